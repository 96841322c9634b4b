"""TextureBank and the procedural textures."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from support import noise

from draem_plugin.augmentation.textures import TextureBank, procedural_textures
from draem_plugin.data.images import IMAGE_EXTENSIONS

LOGGER = "draem_plugin.augmentation.textures"


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING]


def test_bank_loads_nested_dtd_layout(tmp_path: Path) -> None:
    for i, (cls, ext) in enumerate([("banded", "jpg"), ("banded", "JPG"), ("dotted", "png"), ("dotted", "jpeg")]):
        (tmp_path / "images" / cls).mkdir(parents=True, exist_ok=True)
        path = tmp_path / "images" / cls / f"{i}.{ext}"
        Image.fromarray(noise(i)).save(path, format="PNG" if ext == "png" else "JPEG")
    (tmp_path / "images" / "labels.txt").write_text("not an image")
    bank = TextureBank(tmp_path / "images", size=(32, 24))
    assert len(bank) == 4
    assert bank.images.dtype == torch.uint8
    assert bank.images.shape == (4, 3, 32, 24)
    assert "images" in dict(bank.named_buffers())
    assert "images" not in bank.state_dict()  # non-persistent: checkpoints stay small


def test_bank_resizes_without_cropping(tmp_path: Path) -> None:
    array = np.zeros((40, 80, 3), dtype=np.uint8)
    array[:, 40:] = 255  # left half black, right half white
    Image.fromarray(array).save(tmp_path / "halves.png")
    image = TextureBank(tmp_path, size=16).images[0, 0]
    assert (image[:, :7] == 0).all() and (image[:, 9:] == 255).all()  # both halves survive: resized, not cropped


def test_bank_grayscale_rgba_and_16_bit(tmp_path: Path) -> None:
    Image.fromarray(np.full((40, 40), 100, dtype=np.uint8)).save(tmp_path / "a_grey.png")
    rgba = np.zeros((40, 40, 4), dtype=np.uint8)
    rgba[..., :3] = (10, 20, 30)  # fully transparent: the alpha must be dropped, not composited
    Image.fromarray(rgba).save(tmp_path / "b_rgba.png")
    levels = np.full((40, 40), 51400, dtype=np.uint16)  # 51400 / 257 = 200
    levels[0, 0], levels[0, 1] = 0, 65535
    Image.fromarray(levels).save(tmp_path / "c_16bit.png")
    Image.fromarray(levels).save(tmp_path / "d_16bit.tif")
    bank = TextureBank(tmp_path, size=40)
    assert len(bank) == 4
    assert (bank.images[0] == 100).all()
    assert torch.equal(bank.images[1, :, 5, 5], torch.tensor([10, 20, 30], dtype=torch.uint8))
    for sixteen in bank.images[2:]:
        assert (sixteen[:, 20, 20] == 200).all()  # scaled to 8 bits, not clipped to 255
        assert sixteen.max() == 255 and sixteen.min() == 0
        assert torch.equal(sixteen[0], sixteen[1]) and torch.equal(sixteen[0], sixteen[2])


def test_bank_accepts_tiny_images_with_one_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    for i in range(3):
        Image.fromarray(noise(i, 8, 8)).save(tmp_path / f"tiny{i}.png")
    Image.fromarray(noise(9)).save(tmp_path / "big.png")
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        bank = TextureBank(tmp_path, size=64)
    assert len(bank) == 4 and bank.images.shape[-2:] == (64, 64)
    messages = _warnings(caplog)
    assert len(messages) == 1
    assert "3 texture image(s) are smaller than 32 px" in messages[0] and "tiny0.png" in messages[0]


def test_bank_single_file(tmp_path: Path) -> None:
    Image.fromarray(noise(0)).save(tmp_path / "one.bmp")
    Image.fromarray(noise(1)).save(tmp_path / "other.png")
    bank = TextureBank(tmp_path / "one.bmp", size=32)
    assert len(bank) == 1


def test_bank_skips_corrupt_files_with_one_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    Image.fromarray(noise(0)).save(tmp_path / "good.jpg")
    Image.fromarray(noise(1)).save(tmp_path / "good.png")
    (tmp_path / "truncated.jpg").write_bytes((tmp_path / "good.jpg").read_bytes()[:200])
    (tmp_path / "garbage.png").write_bytes(b"definitely not a png")
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        bank = TextureBank(tmp_path, size=32)
    assert len(bank) == 2
    messages = _warnings(caplog)
    assert len(messages) == 1
    assert "Skipped 2" in messages[0] and "truncated.jpg" in messages[0] and "garbage.png" in messages[0]


def test_bank_all_corrupt_raises(tmp_path: Path) -> None:
    (tmp_path / "garbage.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="could be decoded"):
        TextureBank(tmp_path)


def test_bank_missing_path_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        TextureBank(tmp_path / "nowhere")


@pytest.mark.parametrize("content", [None, "notes.txt"])
def test_bank_folder_without_images_raises(tmp_path: Path, content: str | None) -> None:
    if content:
        (tmp_path / content).write_text("hello")
    with pytest.raises(FileNotFoundError, match=r"no image files.*\.jpg"):
        TextureBank(tmp_path)


def test_bank_non_image_file_raises(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match="not an image"):
        TextureBank(tmp_path / "notes.txt")


def test_bank_max_images_takes_a_seeded_subset(tmp_path: Path) -> None:
    for i in range(12):
        Image.fromarray(np.full((8, 8, 3), 20 * i, dtype=np.uint8)).save(tmp_path / f"{i:02d}.png")
    first = TextureBank(tmp_path, size=8, max_images=5, seed=1)
    assert len(first) == 5
    assert torch.equal(first.images, TextureBank(tmp_path, size=8, max_images=5, seed=1).images)
    subsets = {tuple(TextureBank(tmp_path, size=8, max_images=5, seed=s).images[:, 0, 0, 0].tolist()) for s in range(4)}
    assert len(subsets) > 1
    assert len(TextureBank(tmp_path, size=8, max_images=50)) == 12
    with pytest.raises(ValueError, match="max_images"):
        TextureBank(tmp_path, max_images=0)


def test_bank_sample_draws_and_resizes(texture_dir: Path) -> None:
    bank = TextureBank(texture_dir, size=64)
    same = bank.sample(32, 64, 64, generator=_gen())
    assert same.dtype == torch.float32 and same.shape == (32, 3, 64, 64)
    stored = bank.images.float() / 255
    matches = (same[:, None] == stored[None]).flatten(2).all(dim=2)  # each sample is one stored image
    assert torch.all(matches.sum(dim=1) == 1)
    assert len(set(matches.int().argmax(dim=1).tolist())) > 3  # with replacement, several different ones
    resized = bank.sample(4, 32, 48, generator=_gen())
    assert resized.shape == (4, 3, 32, 48)
    assert resized.min() >= 0 and resized.max() <= 1
    assert torch.equal(bank.sample(4, 32, 48, generator=_gen()), resized)


def test_procedural_bank_warns_once_and_samples(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        bank = TextureBank(None, size=32)
        textures = bank.sample(6, 40, 24, generator=_gen())
        bank.sample(2, 40, 24)
    messages = _warnings(caplog)
    assert len(messages) == 1
    assert "anomaly_source_path" in messages[0] and "dtd/images" in messages[0]
    assert len(bank) == 0
    assert textures.shape == (6, 3, 40, 24)
    assert textures.min() >= 0 and textures.max() <= 1
    assert textures.std(dim=(2, 3)).min() > 0.01  # textured, not flat
    assert torch.equal(procedural_textures(6, 40, 24, generator=_gen()), textures)
    assert "procedural" in repr(bank)


def _channel_correlation(textures: torch.Tensor) -> torch.Tensor:
    """Per texture, the smallest Pearson correlation between two of its colour channels."""
    flat = textures.flatten(2)
    flat = (flat - flat.mean(-1, keepdim=True)) / flat.std(-1, keepdim=True)
    pairs = [(0, 1), (0, 2), (1, 2)]
    return torch.stack([(flat[:, i] * flat[:, j]).mean(-1) for i, j in pairs]).amin(0)


def test_procedural_textures_range_from_one_hue_to_multicoloured() -> None:
    correlation = _channel_correlation(procedural_textures(64, 64, 64, generator=_gen()))
    assert correlation.max() > 0.95  # channels vary together: one hue shaded in brightness
    assert correlation.min() < 0.3  # channels vary independently: multicoloured
    assert 0.3 < (correlation > 0.7).float().mean() < 0.9  # both kinds are common


def test_image_extensions() -> None:
    assert IMAGE_EXTENSIONS == (".bmp", ".jpeg", ".jpg", ".png", ".tif", ".tiff", ".webp")
