"""Messy inputs end to end: anomaly sources, training and test data, out-of-range parameters (docs/bad_inputs.md).

Every dataset is a few 64-px images written into ``tmp_path`` and read by anomalib's own ``Folder`` / ``MVTecAD``
datamodules; the model is the tiny CPU configuration. Unit-level cases already covered in
``tests/unit`` are not repeated here.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from anomalib.data import Folder, MVTecAD
from lightning.pytorch import Callback
from support import TINY, folder_datamodule, make_category, messages, noise, save, tiny_engine, tiny_model

from draem_plugin import DraemPlugin

LOGGER = "draem_plugin.data.checks"
AUGMENTER_LOGGER = "draem_plugin.augmentation.textures"
MODEL_LOGGER = "draem_plugin.lightning_model"
PIXEL_METRICS = {"pixel_AUROC", "pixel_AUPR", "pixel_AUPRO"}
IMAGE_METRICS = {"image_AUROC", "image_F1Score"}


pytestmark = pytest.mark.usefixtures("one_thread")


def fit_and_test(root: Path, datamodule: Folder) -> dict[str, float]:
    """Train the tiny model one epoch and test it; the test results."""
    model = tiny_model()
    tiny_engine(root / "run").fit(model, datamodule=datamodule)
    (results,) = tiny_engine(root / "test").test(model, datamodule=datamodule, verbose=False)
    return results


# ------------------------------------------------------------------------------------------------ anomaly source
@pytest.mark.parametrize(
    ("layout", "error", "match"),
    [
        ("missing", FileNotFoundError, r"does not exist.*None for procedural textures"),
        ("empty", FileNotFoundError, r"no image files under .*dtd/images"),
        ("no_images", FileNotFoundError, r"no image files under .*searched recursively"),
        ("all_corrupt", ValueError, r"none of the 2 image file\(s\) .* could be decoded.*another texture folder"),
        ("text_file", ValueError, r"is not an image; accepted extensions"),
    ],
)
def test_unusable_anomaly_source_fails_at_construction(
    tmp_path: Path, layout: str, error: type[Exception], match: str
) -> None:
    source = tmp_path / "textures"
    if layout != "missing":
        source.mkdir()
    if layout == "no_images":
        (source / "readme.txt").write_text("textures go here")
    elif layout == "all_corrupt":
        (source / "a.png").write_bytes(b"not a png")
        (source / "b.jpg").write_bytes(b"")
    elif layout == "text_file":
        source = source / "notes.txt"
        source.write_text("hello")
    with pytest.raises(error, match=match) as info:
        tiny_model(anomaly_source_path=source)
    assert str(source) in str(info.value)  # the message names the path


def test_messy_anomaly_source_folder_trains_with_warnings(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Grey, RGBA, 16-bit, tiny, nested, corrupt and truncated textures: the readable ones are used, two warnings."""
    source = tmp_path / "textures"
    save(source / "grey.png", noise(1), "L")
    save(source / "rgba.png", noise(2), "RGBA")
    save(source / "sixteen.png", noise(3), "I;16")
    save(source / "nested" / "tiny.png", noise(4, 8, 8))
    good = save(source / "good.png", noise(5))
    (source / "truncated.png").write_bytes(good.read_bytes()[:300])
    (source / "garbage.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    caplog.set_level(logging.WARNING, logger=AUGMENTER_LOGGER)
    model = tiny_model(anomaly_source_path=source, anomaly_probability=1.0)
    assert len(model.augmenter.bank) == 5
    warnings = messages(caplog, logging.WARNING, AUGMENTER_LOGGER)
    assert len(warnings) == 2
    assert "Skipped 2 unreadable" in warnings[0] and "truncated.png" in warnings[0] and "garbage.jpg" in warnings[0]
    assert "smaller than 32 px" in warnings[1] and "tiny.png" in warnings[1]
    root = make_category(tmp_path / "data", good=1, bad=1)
    tiny_engine(tmp_path / "run", max_steps=2).fit(model, datamodule=folder_datamodule(root))
    assert model.global_step == 2


def test_single_image_file_as_anomaly_source_trains(tmp_path: Path) -> None:
    texture = save(tmp_path / "scratch_texture.jpg", noise(9, 40, 90))
    model = tiny_model(anomaly_source_path=texture)
    assert len(model.augmenter.bank) == 1
    root = make_category(tmp_path / "data", good=1, bad=1)
    tiny_engine(tmp_path / "run", max_steps=2).fit(model, datamodule=folder_datamodule(root))
    assert model.global_step == 2


# ------------------------------------------------------------------------------------------------ training data
@pytest.mark.parametrize("mode", ["L", "RGBA"])
def test_grey_and_rgba_images_are_converted_and_work(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, mode: str
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    root = make_category(tmp_path / "data", mode=mode)
    results = fit_and_test(tmp_path, folder_datamodule(root))
    assert set(results) == IMAGE_METRICS | PIXEL_METRICS
    assert all(np.isfinite(value) for value in results.values())
    info = messages(caplog, logging.INFO, LOGGER)
    assert any(f"Folder train split: images in modes {{'{mode}': 4}} are converted to RGB" in m for m in info)


def test_16_bit_images_fail_before_training_naming_the_files(tmp_path: Path) -> None:
    """anomalib's read_image clips 16-bit grey to white: refuse them instead of training on blank images."""
    root = make_category(tmp_path / "data", mode="I;16")
    model = tiny_model()
    with pytest.raises(ValueError, match=r"train split cannot be used: 4 image\(s\) are 16-bit") as info:
        tiny_engine(tmp_path / "run").fit(model, datamodule=folder_datamodule(root))
    assert "train/good/000.png (I;16)" in str(info.value) and "convert them to 8 bits" in str(info.value)
    assert model.global_step == 0


class _InputShapes(Callback):
    """Records the shape of every training batch."""

    def __init__(self) -> None:
        self.shapes: set[tuple[int, ...]] = set()

    def on_train_batch_start(self, trainer: object, pl_module: object, batch: object, batch_idx: int) -> None:
        self.shapes.add(tuple(batch.image.shape[1:]))


@pytest.mark.parametrize(
    ("image_size", "size", "level", "stretched"),
    [(64, (50, 70), logging.WARNING, True), ((64, 96), (40, 60), logging.INFO, False)],
)
def test_sizes_that_are_not_multiples_of_32_are_resized_and_reported(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    image_size: int | tuple[int, int],
    size: tuple[int, int],
    level: int,
    stretched: bool,
) -> None:
    """Non-square, non-multiple-of-32 images are resized to image_size; a changed aspect ratio is a warning."""
    caplog.set_level(logging.INFO, logger=LOGGER)
    root = make_category(tmp_path / "data", size=size)
    shapes = _InputShapes()
    model = tiny_model(image_size=image_size)
    tiny_engine(tmp_path / "run", callbacks=[shapes]).fit(model, datamodule=folder_datamodule(root))
    target = (image_size, image_size) if isinstance(image_size, int) else image_size
    assert shapes.shapes == {(3, *target)}
    (message,) = [m for m in messages(caplog, level, LOGGER) if m.startswith("Folder train split")]
    assert f"4 image(s) of {size[0]}x{size[1]} (4) are resized to {target[0]}x{target[1]}" in message
    assert ("aspect ratio changes" in message) is stretched


def test_no_resizing_pre_processor_with_odd_sizes_fails_before_training(tmp_path: Path) -> None:
    root = make_category(tmp_path / "data", size=(50, 70))
    model = tiny_model(pre_processor=False)
    with pytest.raises(ValueError, match=r"images are 50x70 \(4\) and the pre-processor does not resize them"):
        tiny_engine(tmp_path / "run").fit(model, datamodule=folder_datamodule(root))
    assert model.global_step == 0


def test_corrupt_training_images_are_named_before_training(tmp_path: Path) -> None:
    root = make_category(tmp_path / "data")
    (root / "train" / "good" / "garbage.png").write_bytes(b"definitely not a png")
    whole = (root / "train" / "good" / "000.png").read_bytes()
    (root / "train" / "good" / "truncated.png").write_bytes(whole[: len(whole) // 2])
    model = tiny_model()
    with pytest.raises(ValueError, match=r"train split cannot be used: 2 file\(s\) cannot be read") as info:
        tiny_engine(tmp_path / "run").fit(model, datamodule=folder_datamodule(root))
    assert "garbage.png (UnidentifiedImageError" in str(info.value)
    assert "truncated.png (OSError: image file is truncated" in str(info.value)
    assert "Remove or replace them" in str(info.value)
    assert model.global_step == 0


def test_corrupt_mask_is_named_before_testing(tmp_path: Path) -> None:
    root = make_category(tmp_path / "data")
    for mask in (root / "ground_truth" / "bad").iterdir():  # the validation split takes some test images
        mask.write_bytes(b"broken")
    with pytest.raises(ValueError, match=r"test split cannot be used: \d file\(s\) cannot be read: .*_mask\.png"):
        tiny_engine(tmp_path / "test").test(tiny_model(), datamodule=folder_datamodule(root))


def test_one_training_image_with_batch_size_one(tmp_path: Path) -> None:
    root = make_category(tmp_path / "data", train=1)
    model = tiny_model()
    tiny_engine(tmp_path / "run", max_epochs=2).fit(model, datamodule=folder_datamodule(root, batch_size=1))
    assert model.global_step == 2
    (results,) = tiny_engine(tmp_path / "test").test(model, datamodule=folder_datamodule(root), verbose=False)
    assert set(results) == IMAGE_METRICS | PIXEL_METRICS


def test_a_last_batch_of_one_32px_image_trains_on_two_copies(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """At 32x32 the U-Net bottleneck is 1x1, where BatchNorm needs more than one sample."""
    caplog.set_level(logging.WARNING, logger=MODEL_LOGGER)
    root = make_category(tmp_path / "data", train=3, size=(32, 32))
    model = tiny_model(image_size=32)
    tiny_engine(tmp_path / "run", max_epochs=2).fit(model, datamodule=folder_datamodule(root, batch_size=2))
    assert model.global_step == 4
    warnings = [m for m in messages(caplog, logging.WARNING, MODEL_LOGGER) if "single 32x32 image" in m]
    assert len(warnings) == 1 and "image_size >= 64" in warnings[0]


# ------------------------------------------------------------------------------------------------ test data
def test_empty_test_split_fails_clearly(tmp_path: Path) -> None:
    """An MVTec category whose test folder holds nothing: a clear error instead of an empty result."""
    make_category(tmp_path / "data" / "part", good=0, bad=0)
    datamodule = MVTecAD(root=tmp_path / "data", category="part", train_batch_size=2, num_workers=0)
    model = tiny_model()
    tiny_engine(tmp_path / "run").fit(model, datamodule=datamodule)
    with pytest.raises(ValueError, match=r"The MVTecAD test split is empty: no images to evaluate"):
        tiny_engine(tmp_path / "test").test(model, datamodule=datamodule)


def test_empty_train_split_fails_clearly(tmp_path: Path) -> None:
    """Without the check Lightning skips every epoch and "trains" nothing."""
    root = make_category(tmp_path / "data" / "part", train=0)
    (root / "train" / "good").mkdir(parents=True)
    model = tiny_model()
    datamodule = MVTecAD(root=tmp_path / "data", category="part", num_workers=0)
    with pytest.raises(ValueError, match=r"The MVTecAD train split is empty: no images to train on"):
        tiny_engine(tmp_path / "run").fit(model, datamodule=datamodule)
    assert model.global_step == 0


def test_test_images_without_masks_skip_pixel_metrics_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    root = make_category(tmp_path / "data", masks=False)
    results = fit_and_test(tmp_path, folder_datamodule(root, masks=False))
    assert set(results) == IMAGE_METRICS  # no pixel metric, not even a 0 or NaN placeholder
    (warning,) = [m for m in messages(caplog, logging.WARNING, LOGGER) if "no ground-truth masks" in m]
    assert "pixel_AUROC, pixel_AUPR, pixel_AUPRO are skipped" in warning.replace("(", "").replace(")", "")
    assert "mask_dir" in warning


def test_mvtec_layout_without_ground_truth_fails_inside_anomalib(tmp_path: Path) -> None:
    """anomalib's MVTecAD needs a mask per defect image and fails in its own setup (docs: use Folder instead)."""
    make_category(tmp_path / "data" / "part", masks=False)
    datamodule = MVTecAD(root=tmp_path / "data", category="part", num_workers=0)
    with pytest.raises(ValueError, match="Must have equal len keys"):
        tiny_engine(tmp_path / "run").fit(tiny_model(), datamodule=datamodule)


def test_test_split_with_only_normal_images_warns_that_metrics_are_meaningless(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    root = make_category(tmp_path / "data", bad=0)
    fit_and_test(tmp_path, folder_datamodule(root, abnormal=False))
    (warning,) = [m for m in messages(caplog, logging.WARNING, LOGGER) if "holds only normal images" in m]
    assert "Add anomalous test images" in warning


# ------------------------------------------------------------------------------------------------ parameters
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"beta_range": (-0.1, 0.5)}, r"beta_range must be \(lo, hi\) with lo <= hi within \[0.0, 1.0\]"),
        ({"beta_range": (0.5, 1.2)}, "beta_range"),
        ({"beta_range": (float("nan"), 0.5)}, "beta_range"),
        ({"anomaly_probability": -0.1}, r"anomaly_probability must be a probability in \[0, 1\]"),
        ({"anomaly_probability": float("nan")}, "anomaly_probability"),
        ({"normal_rotation_probability": 1.2}, "normal_rotation_probability"),
        ({"discriminative_width": -2}, "discriminative_width must be a positive integer"),
        ({"discriminative_width": 0}, "discriminative_width"),
        ({"reconstructive_width": 0}, "reconstructive_width"),
        ({"image_size": (64, 32), "score_filter_size": 33}, r"score_filter_size \(33\) is larger than the image"),
        ({"score_filter_size": 8}, "score_filter_size must be odd"),
        ({"image_size": 0}, "image_size must be at least 32"),
        ({"image_size": (64, 16)}, "image_size must be at least 32"),
        ({"image_size": (31, 64)}, "image_size"),
        ({"lr": float("inf")}, "lr must be positive and finite"),
        ({"lr": float("nan")}, "lr must be positive"),
        ({"augmentation_preset": "draem"}, "unknown augmentation preset 'draem'"),
    ],
)
def test_out_of_range_parameters_fail_at_construction_naming_the_parameter(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        DraemPlugin(**{**TINY, **kwargs})
