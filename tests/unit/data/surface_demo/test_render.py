"""SurfaceDemo's images: tinted crops, defects with exact masks, disjoint train and test photo regions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from draem_plugin.data.surface_demo import build, render


def load(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image)


def test_normal_images_are_tinted_rgb_not_gray(brick: Path) -> None:
    image = load(brick / "train/good/000.png").astype(float)
    assert np.abs(image[..., 0] - image[..., 2]).mean() > 5  # brick is tinted red-brown


@pytest.mark.parametrize("defect", render.DEFECT_TYPES)
def test_masks_cover_exactly_the_changed_pixels(brick: Path, defect: str) -> None:
    for index in range(2):
        image = load(brick / f"test/{defect}/{index:03d}.png")
        mask = load(brick / f"ground_truth/{defect}/{index:03d}_mask.png")
        assert set(np.unique(mask)) == {0, 255}
        assert (mask > 0).mean() >= render.MIN_DEFECT_AREA

        sample = render.render_sample("brick", "test", defect, index, 64, 0)
        np.testing.assert_array_equal(image, sample.image)  # the file is this rendering...
        np.testing.assert_array_equal(mask, sample.mask)
        change = np.abs(image.astype(int) - sample.clean).max(axis=2)  # ...of this defect-free image
        inside = mask > 0
        assert change[inside].mean() > 30  # clearly visible: > 30 of 255 grey levels on average
        assert change[~inside].max() == 0  # and nothing else changed


def test_train_and_test_crops_come_from_disjoint_photo_columns(brick: Path) -> None:
    manifest = json.loads((brick / build.MANIFEST_NAME).read_text())
    train_columns, test_columns = render.photo_columns("train"), render.photo_columns("test")
    assert train_columns[1] <= test_columns[0]
    photo = render._photo("brick")
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
