"""Helpers shared by the tests: tiny model settings, the optional ../shared folder, tiny datasets and engines.

Every dataset here is a few 64-px images written into a temporary folder and read by anomalib's own ``Folder`` /
``MVTecAD`` datamodules; the model is the tiny CPU configuration :data:`TINY`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from anomalib.data import Folder
from anomalib.engine import Engine
from PIL import Image

from draem_plugin import DraemPlugin, SurfaceDemo

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
HF_HOME = SHARED / "weights" / "hf_home"
#: The offline ImageNet backbone of ../shared/weights (never layer4).
BACKBONE = "resnet18.tv_in1k"

#: Tiny DraemPlugin settings for CPU tests.
TINY = {"reconstructive_width": 4, "discriminative_width": 4, "image_size": 64, "score_filter_size": 7}


def shared_path(*parts: str) -> Path:
    """Path under ../shared, or skip the test when it is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent (../shared is optional)")
    return path


def needs_backbone() -> Path:
    """The offline Hugging Face cache of ../shared, or skip (PatchCore / PaDiM need an ImageNet backbone)."""
    if not (HF_HOME / "hub").is_dir():
        pytest.skip(f"{HF_HOME} is absent (../shared is optional): PatchCore and PaDiM need its offline backbone")
    return HF_HOME


def noise(seed: int, height: int = 64, width: int = 64) -> np.ndarray:
    """A random RGB uint8 image."""
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def save(path: Path, array: np.ndarray, mode: str = "RGB") -> Path:
    """Write an RGB uint8 ``array`` as a PNG in ``mode``: ``RGB``, ``L``, ``RGBA`` or 16-bit grey ``I;16``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode == "L":
        image = Image.fromarray(array[..., 0])
    elif mode == "RGBA":
        image = Image.fromarray(np.dstack([array, np.full(array.shape[:2], 128, dtype=np.uint8)]))
    elif mode == "I;16":
        image = Image.fromarray(array[..., 0].astype(np.uint16) * 257)
    else:
        image = Image.fromarray(array)
    image.save(path)
    return path


def make_category(
    root: Path,
    *,
    train: int = 4,
    good: int = 2,
    bad: int = 2,
    masks: bool = True,
    size: tuple[int, int] = (64, 64),
    mode: str = "RGB",
) -> Path:
    """An MVTec-layout category: ``train/good``, ``test/good``, ``test/bad`` and ``ground_truth/bad`` masks."""
    height, width = size
    for i in range(train):
        save(root / "train" / "good" / f"{i:03d}.png", noise(i, height, width), mode)
    for i in range(good):
        save(root / "test" / "good" / f"{i:03d}.png", noise(100 + i, height, width), mode)
    for i in range(bad):
        image = noise(200 + i, height, width)
        image[height // 4 : height // 2, width // 4 : width // 2] = 255
        save(root / "test" / "bad" / f"{i:03d}.png", image, mode)
        if masks:
            mask = np.zeros((height, width), dtype=np.uint8)
            mask[height // 4 : height // 2, width // 4 : width // 2] = 255
            (root / "ground_truth" / "bad").mkdir(parents=True, exist_ok=True)
            Image.fromarray(mask).save(root / "ground_truth" / "bad" / f"{i:03d}_mask.png")
    return root


def folder_datamodule(root: Path, *, masks: bool = True, abnormal: bool = True, batch_size: int = 2) -> Folder:
    """anomalib's ``Folder`` over :func:`make_category`'s layout (validation images come from the test split)."""
    return Folder(
        name=root.name,
        root=root,
        normal_dir="train/good",
        abnormal_dir="test/bad" if abnormal else None,
        normal_test_dir="test/good",
        mask_dir="ground_truth/bad" if masks and abnormal else None,
        train_batch_size=batch_size,
        eval_batch_size=4,
        num_workers=0,
    )


def tiny_engine(root: Path, **kwargs: object) -> Engine:
    """A quiet CPU engine, 1 epoch unless told otherwise."""
    kwargs.setdefault("max_epochs", 1)
    return Engine(
        accelerator="cpu",
        default_root_dir=root,
        enable_progress_bar=False,
        enable_model_summary=False,
        logger=False,
        num_sanity_val_steps=0,
        **kwargs,
    )


def tiny_demo(root: Path, **kwargs: object) -> SurfaceDemo:
    """The session's tiny SurfaceDemo category (``demo_root``: 64 px, 8 train, 4 good and 2 per defect type)."""
    sizes = {"image_size": 64, "num_train": 8, "num_test_good": 4, "num_test_defect": 2}
    return SurfaceDemo(root=root, **sizes, **{"train_batch_size": 4, "eval_batch_size": 8, "num_workers": 0, **kwargs})


def tiny_model(**kwargs: object) -> DraemPlugin:
    """The tiny model, seeded, without the image visualiser (it only writes files)."""
    return DraemPlugin(**{**TINY, "seed": 0, "visualizer": False, **kwargs})


def messages(caplog: pytest.LogCaptureFixture, level: int, logger: str) -> list[str]:
    """The messages ``logger`` logged at exactly ``level``."""
    return [r.getMessage() for r in caplog.records if r.name == logger and r.levelno == level]


__all__ = [
    "BACKBONE",
    "HF_HOME",
    "REPO",
    "SHARED",
    "TINY",
    "folder_datamodule",
    "make_category",
    "messages",
    "needs_backbone",
    "noise",
    "save",
    "shared_path",
    "tiny_demo",
    "tiny_engine",
    "tiny_model",
]
