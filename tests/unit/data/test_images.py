"""The one image decoder: original size, JPEG draft decoding, errors for truncated files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from draem_plugin.data.images import DECODE_ERRORS, IMAGE_EXTENSIONS, decode_image


def test_decodes_fully_and_keeps_the_size_on_disk(tmp_path: Path) -> None:
    path = tmp_path / "photo.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8)).save(path)
    full = decode_image(path)
    assert full.size == (160, 120) and full.info["original_size"] == (160, 120)
    small = decode_image(path, draft=(20, 15))  # JPEG: decoded at 1/8 scale
    assert small.size == (20, 15) and small.info["original_size"] == (160, 120)
    png = tmp_path / "photo.png"
    full.save(png)
    assert decode_image(png, draft=(20, 15)).size == (160, 120)  # other formats ignore the draft


def test_a_truncated_file_fails_with_a_decode_error(tmp_path: Path) -> None:
    path = tmp_path / "photo.png"
    Image.fromarray(np.zeros((64, 64, 3), dtype=np.uint8) + 7).save(path)
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(path.read_bytes()[:100])
    with pytest.raises(DECODE_ERRORS):
        decode_image(truncated)
    assert ".png" in IMAGE_EXTENSIONS and ".jpg" in IMAGE_EXTENSIONS
