"""SurfaceDemo builds an honest, deterministic, cached MVTec-layout dataset offline, and loads as an anomalib datamodule."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from draem_plugin.data import SurfaceDemo, build_surface_demo
from draem_plugin.data import surface_demo as sd

#: Tiny build parameters: 64 px, 4 train, 3 good test and 2 images per defect type.
SMALL = {"image_size": 64, "num_train": 4, "num_test_good": 3, "num_test_defect": 2}


def load(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image)


def files(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


@pytest.fixture(scope="module")
def brick(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_surface_demo(tmp_path_factory.mktemp("surface_demo"), "brick", **SMALL)


def test_layout_and_counts_follow_mvtec_ad(brick: Path) -> None:
    assert brick.name == "brick"
    assert sorted(p.name for p in (brick / "test").iterdir()) == sorted(["good", *sd.DEFECT_TYPES])
    assert len(list((brick / "train/good").glob("*.png"))) == 4
    assert len(list((brick / "test/good").glob("*.png"))) == 3
    for defect in sd.DEFECT_TYPES:
        images = sorted(p.stem for p in (brick / "test" / defect).glob("*.png"))
        masks = sorted(p.stem for p in (brick / "ground_truth" / defect).glob("*.png"))
        assert images == ["000", "001"]
        assert masks == ["000_mask", "001_mask"]
    for path in brick.rglob("*.png"):
        with Image.open(path) as image:
            assert image.size == (64, 64)
            assert image.mode == ("L" if path.parent.parent.name == "ground_truth" else "RGB")
    assert json.loads((brick / sd.MANIFEST_NAME).read_text())["params"]["format_version"] == sd.FORMAT_VERSION


def test_normal_images_are_tinted_rgb_not_gray(brick: Path) -> None:
    image = load(brick / "train/good/000.png").astype(float)
    assert np.abs(image[..., 0] - image[..., 2]).mean() > 5  # brick is tinted red-brown


@pytest.mark.parametrize("defect", sd.DEFECT_TYPES)
def test_masks_cover_exactly_the_changed_pixels(brick: Path, defect: str) -> None:
    for index in range(2):
        image = load(brick / f"test/{defect}/{index:03d}.png")
        mask = load(brick / f"ground_truth/{defect}/{index:03d}_mask.png")
        assert set(np.unique(mask)) == {0, 255}
        assert (mask > 0).mean() >= sd.MIN_DEFECT_AREA

        sample = sd._render_sample("brick", "test", defect, index, 64, 0)
        np.testing.assert_array_equal(image, sample.image)  # the file is this rendering...
        np.testing.assert_array_equal(mask, sample.mask)
        change = np.abs(image.astype(int) - sample.clean).max(axis=2)  # ...of this defect-free image
        inside = mask > 0
        assert change[inside].mean() > 30  # clearly visible: > 30 of 255 grey levels on average
        assert change[~inside].max() == 0  # and nothing else changed


def test_build_is_deterministic_and_seeded(tmp_path: Path) -> None:
    first = files(build_surface_demo(tmp_path / "a", "grass", **SMALL))
    second = files(build_surface_demo(tmp_path / "b", "grass", **SMALL))
    other_seed = files(build_surface_demo(tmp_path / "c", "grass", **SMALL, seed=1))
    assert first == second
    assert first.keys() == other_seed.keys()
    assert first["train/good/000.png"] != other_seed["train/good/000.png"]


def test_second_build_reuses_and_changed_parameters_rebuild(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = build_surface_demo(tmp_path, "gravel", **SMALL)
    stamps = {path: path.stat().st_mtime_ns for path in folder.rglob("*")}

    assert build_surface_demo(tmp_path, "gravel", **SMALL) == folder
    assert {path: path.stat().st_mtime_ns for path in folder.rglob("*")} == stamps

    with caplog.at_level(logging.INFO, logger=sd.__name__):
        build_surface_demo(tmp_path, "gravel", **{**SMALL, "num_train": 6})
    assert "Rebuilding SurfaceDemo 'gravel'" in caplog.text
    assert len(list((folder / "train/good").glob("*.png"))) == 6
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gravel"]  # no staging or retired folders left


def test_missing_files_are_rebuilt(tmp_path: Path) -> None:
    folder = build_surface_demo(tmp_path, "brick", **SMALL)
    original = (folder / "test/hole/001.png").read_bytes()
    (folder / "test/hole/001.png").unlink()
    build_surface_demo(tmp_path, "brick", **SMALL)
    assert (folder / "test/hole/001.png").read_bytes() == original


def test_a_folder_not_built_by_surface_demo_is_never_replaced(tmp_path: Path) -> None:
    (tmp_path / "brick").mkdir()
    (tmp_path / "brick/mine.txt").write_text("user data")
    with pytest.raises(FileExistsError, match="not built by SurfaceDemo"):
        build_surface_demo(tmp_path, "brick", **SMALL)
    assert (tmp_path / "brick/mine.txt").read_text() == "user data"


def test_a_build_that_finishes_meanwhile_is_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_build_into = sd._build_into
    rival_inodes: dict[str, int] = {}

    def build_while_a_rival_finishes_first(folder: Path, params: dict) -> None:
        real_build_into(folder, params)
        monkeypatch.setattr(sd, "_build_into", real_build_into)  # a rival process builds and moves in first
        rival = build_surface_demo(tmp_path, "brick", **SMALL)
        rival_inodes.update({str(path): path.stat().st_ino for path in rival.rglob("*")})

    monkeypatch.setattr(sd, "_build_into", build_while_a_rival_finishes_first)
    folder = build_surface_demo(tmp_path, "brick", **SMALL)
    assert rival_inodes
    assert {str(path): path.stat().st_ino for path in folder.rglob("*")} == rival_inodes  # the rival's, untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["brick"]


def test_concurrent_builds_agree(tmp_path: Path) -> None:
    start = threading.Barrier(3)
    errors: list[BaseException] = []

    def build() -> None:
        start.wait()
        try:
            build_surface_demo(tmp_path, "grass", **SMALL)
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=build) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert files(tmp_path / "grass") == files(build_surface_demo(tmp_path / "fresh", "grass", **SMALL))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fresh", "grass"]


def test_train_and_test_crops_come_from_disjoint_photo_columns(brick: Path) -> None:
    manifest = json.loads((brick / sd.MANIFEST_NAME).read_text())
    train_columns, test_columns = sd.photo_columns("train"), sd.photo_columns("test")
    assert train_columns[1] <= test_columns[0]
    photo = sd._photo("brick")
    for sample in manifest["samples"]:
        crop = sample["crop"]
        start, stop = train_columns if sample["image"].startswith("train/") else test_columns
        assert start <= crop["left"] and crop["left"] + crop["size"] <= stop, sample

        # The manifest tells the truth: the image is that photo window, rotated, flipped, resized and tinted.
        window = np.rot90(photo[crop["top"] :, crop["left"] :][: crop["size"], : crop["size"]], crop["rot90"])
        window = window[:, ::-1] if crop["flip"] else window
        expected = np.asarray(Image.fromarray(np.ascontiguousarray(window)).resize((64, 64), Image.Resampling.BOX))
        gray = load(brick / sample["image"]).astype(float).mean(axis=2)
        if sample["mask"] is not None:  # compare only the pixels the defect left alone
            keep = load(brick / sample["mask"]) == 0
            gray, expected = gray[keep], expected[keep]
        assert np.corrcoef(gray.ravel(), expected.ravel())[0, 1] > 0.9, sample


@pytest.mark.parametrize("category", ["wood", "Brick", ""])
def test_unknown_category_names_the_valid_ones(tmp_path: Path, category: str) -> None:
    with pytest.raises(ValueError, match="choose one of brick, grass, gravel"):
        build_surface_demo(tmp_path, category)
    with pytest.raises(ValueError, match="choose one of brick, grass, gravel"):
        SurfaceDemo(root=tmp_path, category=category)


def test_invalid_sizes_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="image_size must be at least 32"):
        build_surface_demo(tmp_path, "brick", image_size=16)
    with pytest.raises(ValueError, match="num_test_defect must be at least 1"):
        SurfaceDemo(root=tmp_path, num_test_defect=0)


def test_datamodule_builds_and_loads(tmp_path: Path) -> None:
    datamodule = SurfaceDemo(
        root=tmp_path,
        category="gravel",
        image_size=64,
        num_train=6,
        num_test_good=3,
        num_test_defect=2,
        train_batch_size=4,
        eval_batch_size=16,
        num_workers=0,
    )
    datamodule.prepare_data()
    datamodule.setup()

    batch = next(iter(datamodule.train_dataloader()))
    assert batch.image.shape == (4, 3, 64, 64)
    assert batch.image.dtype == torch.float32
    assert 0.0 <= batch.image.min() and batch.image.max() <= 1.0
    assert not batch.gt_label.any()

    test = next(iter(datamodule.test_dataloader()))
    assert len(datamodule.test_data) == 3 + 2 * len(sd.DEFECT_TYPES) == len(test.image)
    assert sorted(test.gt_label.tolist()) == [False] * 3 + [True] * 8
    assert test.gt_mask.shape == (11, 64, 64)
    assert all(mask.any() == label for mask, label in zip(test.gt_mask, test.gt_label, strict=True))
    assert len(datamodule.val_data) == len(datamodule.test_data)  # MVTecAD's default: validate on the test set


def test_datamodule_keeps_mvtec_split_arguments(tmp_path: Path) -> None:
    datamodule = SurfaceDemo(root=tmp_path, val_split_mode="from_test", seed=3, build_seed=5, num_workers=0, **SMALL)
    datamodule.prepare_data()
    datamodule.setup()
    assert len(datamodule.val_data) + len(datamodule.test_data) == 3 + 2 * len(sd.DEFECT_TYPES)
    assert json.loads((tmp_path / "brick" / sd.MANIFEST_NAME).read_text())["params"]["seed"] == 5


def test_setup_before_prepare_data_explains_the_fix(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"call prepare_data\(\) before setup\(\)"):
        SurfaceDemo(root=tmp_path, **SMALL).setup()
