"""The texture folder the augmentation tests share."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from support import noise


@pytest.fixture
def texture_dir(tmp_path: Path) -> Path:
    """A small folder of random colour textures, 64x64 (the size the augmenter tests run at)."""
    folder = tmp_path / "textures"
    folder.mkdir()
    for i in range(6):
        Image.fromarray(noise(i, 64, 64)).save(folder / f"t{i}.png")
    return folder
