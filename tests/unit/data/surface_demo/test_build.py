"""SurfaceDemo's on-disk build: MVTec layout, deterministic, reused while its parameters match, safe to race."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

import pytest
from PIL import Image

from draem_plugin.data import SurfaceDemo, build_surface_demo
from draem_plugin.data.surface_demo import build, render

SMALL = {"image_size": 64, "num_train": 4, "num_test_good": 3, "num_test_defect": 2}


def files(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


def test_layout_and_counts_follow_mvtec_ad(brick: Path) -> None:
    assert brick.name == "brick"
    assert sorted(p.name for p in (brick / "test").iterdir()) == sorted(["good", *render.DEFECT_TYPES])
    assert len(list((brick / "train/good").glob("*.png"))) == 4
    assert len(list((brick / "test/good").glob("*.png"))) == 3
    for defect in render.DEFECT_TYPES:
        images = sorted(p.stem for p in (brick / "test" / defect).glob("*.png"))
        masks = sorted(p.stem for p in (brick / "ground_truth" / defect).glob("*.png"))
        assert images == ["000", "001"]
        assert masks == ["000_mask", "001_mask"]
    for path in brick.rglob("*.png"):
        with Image.open(path) as image:
            assert image.size == (64, 64)
            assert image.mode == ("L" if path.parent.parent.name == "ground_truth" else "RGB")
    assert json.loads((brick / build.MANIFEST_NAME).read_text())["params"]["format_version"] == build.FORMAT_VERSION


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

    with caplog.at_level(logging.INFO, logger=build.__name__):
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
    real_build_into = build._build_into
    rival_inodes: dict[str, int] = {}

    def build_while_a_rival_finishes_first(folder: Path, params: dict) -> None:
        real_build_into(folder, params)
        monkeypatch.setattr(build, "_build_into", real_build_into)  # a rival process builds and moves in first
        rival = build_surface_demo(tmp_path, "brick", **SMALL)
        rival_inodes.update({str(path): path.stat().st_ino for path in rival.rglob("*")})

    monkeypatch.setattr(build, "_build_into", build_while_a_rival_finishes_first)
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
