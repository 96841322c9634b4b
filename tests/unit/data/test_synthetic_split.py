"""A synthetic validation category from held-out training images: layout, masks, determinism, anomalib reads it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from anomalib.data import MVTecAD
from PIL import Image

from draem_plugin.data.synthetic_split import MANIFEST_NAME, build_synthetic_split


def test_held_out_images_get_defects_with_exact_masks(demo_root: Path, tmp_path: Path) -> None:
    folder = build_synthetic_split(demo_root / "brick", tmp_path, image_size=64, holdout=0.25, defects_per_image=2)
    assert folder == tmp_path / "brick_synthetic"
    manifest = json.loads((folder / MANIFEST_NAME).read_text())
    assert len(manifest["train"]) == 6 and len(manifest["validation"]) == 2
    assert not set(manifest["train"]) & set(manifest["validation"])  # no validation image is trained on
    assert len(list((folder / "train" / "good").glob("*.png"))) == 6
    assert len(list((folder / "test" / "good").glob("*.png"))) == 2
    defects = sorted(folder.glob("test/*/*.png"))
    defects = [path for path in defects if path.parent.name != "good"]
    assert len(defects) == 4
    for path in defects:
        image = np.asarray(Image.open(path), dtype=np.int16)
        mask = np.asarray(Image.open(folder / "ground_truth" / path.parent.name / f"{path.stem}_mask.png")) > 0
        clean = np.asarray(Image.open(folder / "test" / "good" / f"{path.stem.split('_')[0]}.png"), dtype=np.int16)
        assert image.shape == (64, 64, 3) and mask.any()
        assert np.array_equal(image[~mask], clean[~mask])  # outside the mask, the held-out image itself
    datamodule = MVTecAD(root=tmp_path, category="brick_synthetic", num_workers=0)
    datamodule.setup()
    assert len(datamodule.train_data) == 6 and len(datamodule.test_data) == 6
    again = build_synthetic_split(
        demo_root / "brick", tmp_path / "again", image_size=64, holdout=0.25, defects_per_image=2
    )
    assert all((again / p.relative_to(folder)).read_bytes() == p.read_bytes() for p in folder.rglob("*.png"))


def test_bad_arguments_are_refused(demo_root: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="leaves none on one side"):
        build_synthetic_split(demo_root / "brick", tmp_path, holdout=0.01)
    with pytest.raises(FileNotFoundError, match="no training images"):
        build_synthetic_split(tmp_path, tmp_path / "out")
