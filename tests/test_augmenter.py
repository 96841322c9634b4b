"""Tests of the texture bank, the batched texture ops and the Perlin anomaly augmenter."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import kornia
import numpy as np
import pytest
import torch
from PIL import Image

from draem_plugin import augmenter as aug_module
from draem_plugin.augmenter import (
    PAPER_OPS,
    RANDOM_TEXTURE_OPS,
    TEXTURE_OPS,
    AugmentedBatch,
    PerlinAnomalyAugmenter,
    TextureBank,
    adjust_luma,
    apply_random_texture_ops,
    autocontrast,
    enhance_sharpness,
    gamma_contrast,
    posterize_bits,
    procedural_textures,
    shift_hue_saturation,
)

SHARED_TEXTURES = Path(__file__).parents[1].parent / "shared" / "data" / "textures"
LOGGER = "draem_plugin.augmenter"


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _noise_image(seed: int, height: int = 40, width: int = 48) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


@pytest.fixture
def texture_dir(tmp_path: Path) -> Path:
    """A small folder of random colour textures, 64x64 (the size the augmenter tests run at)."""
    folder = tmp_path / "textures"
    folder.mkdir()
    for i in range(6):
        Image.fromarray(_noise_image(i, 64, 64)).save(folder / f"t{i}.png")
    return folder


@pytest.fixture
def constant_texture(tmp_path: Path) -> Path:
    path = tmp_path / "grey.png"
    Image.fromarray(np.full((64, 64, 3), 51, dtype=np.uint8)).save(path)  # 51 / 255 = 0.2
    return path


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING]


# ------------------------------------------------------------------------------------------------ TextureBank
def test_bank_loads_nested_dtd_layout(tmp_path: Path) -> None:
    for i, (cls, ext) in enumerate([("banded", "jpg"), ("banded", "JPG"), ("dotted", "png"), ("dotted", "jpeg")]):
        (tmp_path / "images" / cls).mkdir(parents=True, exist_ok=True)
        path = tmp_path / "images" / cls / f"{i}.{ext}"
        Image.fromarray(_noise_image(i)).save(path, format="PNG" if ext == "png" else "JPEG")
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
        Image.fromarray(_noise_image(i, 8, 8)).save(tmp_path / f"tiny{i}.png")
    Image.fromarray(_noise_image(9)).save(tmp_path / "big.png")
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        bank = TextureBank(tmp_path, size=64)
    assert len(bank) == 4 and bank.images.shape[-2:] == (64, 64)
    messages = _warnings(caplog)
    assert len(messages) == 1
    assert "3 texture image(s) are smaller than 32 px" in messages[0] and "tiny0.png" in messages[0]


def test_bank_single_file(tmp_path: Path) -> None:
    Image.fromarray(_noise_image(0)).save(tmp_path / "one.bmp")
    Image.fromarray(_noise_image(1)).save(tmp_path / "other.png")
    bank = TextureBank(tmp_path / "one.bmp", size=32)
    assert len(bank) == 1


def test_bank_skips_corrupt_files_with_one_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    Image.fromarray(_noise_image(0)).save(tmp_path / "good.jpg")
    Image.fromarray(_noise_image(1)).save(tmp_path / "good.png")
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
    assert 0 <= resized.min() and resized.max() <= 1
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


# ------------------------------------------------------------------------------------------------ texture ops
def _low_contrast(batch: int = 8) -> torch.Tensor:
    return 0.2 + 0.5 * torch.rand(batch, 3, 32, 32, generator=_gen(11)) ** 2


@pytest.mark.parametrize("name", TEXTURE_OPS)
def test_every_op_keeps_shape_and_range_and_changes_the_input(name: str) -> None:
    x = _low_contrast()
    out = RANDOM_TEXTURE_OPS[name](x, _gen())
    assert out.shape == x.shape and out.dtype == x.dtype
    assert out.min() >= 0 and out.max() <= 1
    assert (out - x).abs().amax(dim=(1, 2, 3)).gt(1e-3).sum() >= 3  # several samples visibly changed
    assert torch.equal(out, RANDOM_TEXTURE_OPS[name](x, _gen()))  # parameters come from the generator


def test_gamma_contrast_per_channel() -> None:
    x = torch.full((2, 3, 2, 2), 0.25)
    out = gamma_contrast(x, torch.tensor([[0.5, 1.0, 2.0], [1.0, 1.0, 1.0]]))
    torch.testing.assert_close(out[0, :, 0, 0], torch.tensor([0.5, 0.25, 0.0625]))
    torch.testing.assert_close(out[1], x[1])


def test_adjust_luma_equals_ycbcr_round_trip() -> None:
    x = torch.rand(4, 3, 16, 16, generator=_gen())
    mul, add = torch.tensor([0.8, 1.0, 1.2, 1.1]), torch.tensor([0.1, -0.1, 0.0, 30 / 255])
    ycbcr = kornia.color.rgb_to_ycbcr(x)
    luma = (ycbcr[:, :1] * mul.view(-1, 1, 1, 1) + add.view(-1, 1, 1, 1)).clamp(0, 1)
    expected = kornia.color.ycbcr_to_rgb(torch.cat((luma, ycbcr[:, 1:]), dim=1)).clamp(0, 1)
    torch.testing.assert_close(adjust_luma(x, mul, add), expected, atol=1e-5, rtol=0)


def test_shift_hue_saturation_equals_kornia_hsv_round_trip() -> None:
    x = torch.rand(5, 3, 16, 16, generator=_gen())
    x[0, :, :4] = 0.5  # grey pixels: hue 0, as in kornia
    x[1, :, :2] = 0.0
    hue, sat = torch.tensor([-70.0, -10.0, 0.0, 35.0, 70.0]), torch.tensor([0.2, -0.2, 0.0, 0.1, -0.19])
    h, s, v = kornia.color.rgb_to_hsv(x).unbind(1)
    h = torch.remainder(h + torch.deg2rad(hue).view(-1, 1, 1), 2 * math.pi)
    s = (s + sat.view(-1, 1, 1)).clamp(0, 1)
    expected = kornia.color.hsv_to_rgb(torch.stack((h, s, v), dim=1))
    torch.testing.assert_close(shift_hue_saturation(x, hue, sat), expected, atol=1e-5, rtol=0)


def test_enhance_sharpness_equals_kornia() -> None:
    x = torch.rand(4, 3, 16, 20, generator=_gen())
    factor = torch.tensor([0.0, 0.5, 1.0, 2.0])
    torch.testing.assert_close(enhance_sharpness(x, factor), kornia.enhance.sharpness(x, factor), atol=1e-6, rtol=0)


def test_posterize_bits_equals_kornia() -> None:
    x = torch.rand(7, 3, 8, 8, generator=_gen())
    bits = torch.arange(1, 8)
    torch.testing.assert_close(posterize_bits(x, bits), kornia.enhance.posterize(x, bits))


def test_autocontrast_per_channel() -> None:
    x = torch.rand(2, 3, 8, 8, generator=_gen()) * 0.3 + 0.4
    x[1, 2] = 0.5
    out = autocontrast(x)
    assert torch.allclose(out[0].amin(dim=(1, 2)), torch.zeros(3))
    assert torch.allclose(out[0].amax(dim=(1, 2)), torch.ones(3))
    assert torch.equal(out[1, 2], x[1, 2])  # a constant channel is left alone


def test_random_ops_each_sample_gets_distinct_ops_in_random_order(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake ops write their id into a per-sample history, so the applied sequence is visible."""
    names = [f"fake{k}" for k in range(4)]
    calls: list[int] = []

    def make(k: int):  # noqa: ANN202
        def op(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
            calls.append(x.shape[0])
            out = x.clone()
            step = out[:, 1, 0, 0].long()
            out[torch.arange(x.shape[0]), 2, 0, step] = k + 1
            out[:, 1, 0, 0] += 1
            return out

        return op

    for k, name in enumerate(names):
        monkeypatch.setitem(RANDOM_TEXTURE_OPS, name, make(k))
    batch = 1200
    out = apply_random_texture_ops(torch.zeros(batch, 3, 2, 4), 2, names, generator=_gen())
    assert torch.all(out[:, 1, 0, 0] == 2)  # every sample got exactly num_ops ops
    history = out[:, 2, 0, :2].long()
    assert torch.all(history[:, 0] != history[:, 1]) and torch.all(history >= 1)  # without replacement
    assert sum(calls) == 2 * batch and len(calls) <= 2 * len(names)  # batched: one call per (round, op)
    pairs = torch.bincount((history[:, 0] - 1) * 4 + history[:, 1] - 1, minlength=16).view(4, 4)
    expected = batch / 12  # 12 ordered pairs of distinct ops
    off_diagonal = pairs[~torch.eye(4, dtype=torch.bool)]
    assert torch.all((off_diagonal - expected).abs() < 5 * math.sqrt(expected))


# ------------------------------------------------------------------------------------------------ augmenter
def _images(batch: int, size: int = 64, seed: int = 0) -> torch.Tensor:
    return torch.rand(batch, 3, size, size, generator=_gen(seed))


@pytest.mark.parametrize("probability", [0.1, 0.5, 0.8])
def test_anomaly_fraction_matches_probability(texture_dir: Path, probability: float) -> None:
    augmenter = PerlinAnomalyAugmenter(
        texture_dir,
        source_size=64,
        anomaly_probability=probability,
        scale_exponent_range=(2, 6),
        threshold=0.3,
        ops=["invert"],  # cheap: the ops are not under test here
        num_ops=1,
        seed=0,
    )
    batch = 512
    out = augmenter(_images(batch))
    fraction = out.label.mean().item()
    std = math.sqrt(probability * (1 - probability) / batch)
    assert abs(fraction - probability) < 4 * std + 0.01  # empty masks are rare with these settings


def test_labels_masks_and_untouched_pixels(texture_dir: Path) -> None:
    augmenter = PerlinAnomalyAugmenter(texture_dir, source_size=64, seed=1)
    x = _images(256)
    out = augmenter(x)
    assert isinstance(out, AugmentedBatch)
    assert out.image.shape == x.shape and out.mask.shape == (256, 1, 64, 64) and out.label.shape == (256,)
    assert set(out.mask.unique().tolist()) <= {0.0, 1.0} and set(out.label.unique().tolist()) == {0.0, 1.0}
    assert torch.equal(out.label, (out.mask.flatten(1).sum(dim=1) > 0).float())
    # default: the original DRÆM's probability 0.5, minus the samples whose mask came out empty
    assert 0.3 < out.label.mean() <= 0.5 + 4 * math.sqrt(0.25 / 256)
    outside = out.mask.expand_as(x) == 0
    assert torch.equal(out.image[outside], x[outside])  # bit-identical outside the mask
    normal = out.label == 0
    assert torch.equal(out.image[normal], x[normal])
    assert torch.equal(out.clean, x)
    changed = (out.image != x).flatten(1).any(dim=1)
    assert torch.equal(changed, out.label.bool())
    assert out.image.min() >= 0 and out.image.max() <= 1


@pytest.mark.parametrize("beta_range", [(0.0, 0.8), (0.3, 0.6), (0.5, 0.5)])
def test_blend_weight_stays_in_beta_range(constant_texture: Path, beta_range: tuple[float, float]) -> None:
    """Constant image 0.2 and texture 0.2 inverted to 0.8: inside the mask out = 0.2 beta + 0.8 (1 - beta)."""
    augmenter = PerlinAnomalyAugmenter(
        constant_texture,
        source_size=64,
        anomaly_probability=1.0,
        beta_range=beta_range,
        num_ops=1,
        ops=["invert"],
        seed=3,
    )
    out = augmenter(torch.full((256, 3, 64, 64), 0.2))
    inside = out.mask.expand(-1, 3, -1, -1) == 1
    beta = (0.8 - out.image) / 0.6
    per_sample = [beta[i][inside[i]] for i in range(256) if out.label[i]]
    assert len(per_sample) > 150
    assert max(float(b.max() - b.min()) for b in per_sample) < 1e-5  # one beta per sample
    betas = torch.stack([b[0] for b in per_sample])
    low, high = beta_range
    assert betas.min() >= low - 1e-5 and betas.max() <= high + 1e-5
    assert betas.min() < low + 0.1 * (high - low) + 1e-5 and betas.max() > high - 0.1 * (high - low) - 1e-5
    assert torch.all(out.image[~inside] == 0.2)


def test_determinism_and_fresh_draws(texture_dir: Path) -> None:
    x = _images(16)
    first = PerlinAnomalyAugmenter(texture_dir, source_size=64, seed=5)
    second = PerlinAnomalyAugmenter(texture_dir, source_size=64, seed=5)
    a, b = first(x), second(x)
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    assert not torch.equal(first(x).mask, a.mask)  # the stream moves on
    other = PerlinAnomalyAugmenter(texture_dir, source_size=64, seed=6)(x)
    assert not torch.equal(other.mask, a.mask)


def test_seed_none_follows_torch_global_seed(texture_dir: Path) -> None:
    x = _images(16)
    torch.manual_seed(123)
    a = PerlinAnomalyAugmenter(texture_dir, source_size=64)(x)
    torch.manual_seed(123)
    b = PerlinAnomalyAugmenter(texture_dir, source_size=64)(x)
    assert torch.equal(a.image, b.image) and torch.equal(a.mask, b.mask)


def test_rng_state_round_trip_continues_the_stream(texture_dir: Path) -> None:
    x = _images(16)
    augmenter = PerlinAnomalyAugmenter(texture_dir, source_size=64, seed=7)
    augmenter(x)
    state = augmenter.get_rng_state()
    assert state.dtype == torch.uint8 and state.device.type == "cpu" and state.ndim == 1
    expected = augmenter(x)
    resumed = PerlinAnomalyAugmenter(texture_dir, source_size=64, seed=99)
    resumed.set_rng_state(state)
    assert torch.equal(resumed.get_rng_state(), state)
    got = resumed(x)
    assert torch.equal(got.image, expected.image) and torch.equal(got.mask, expected.mask)
    with pytest.raises(ValueError, match="state"):
        resumed.set_rng_state(torch.zeros(4))


def test_rng_state_of_another_generator_type_falls_back_to_a_derived_seed(
    texture_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    x = _images(8)
    foreign = torch.arange(16, dtype=torch.uint8)  # the size of a CUDA generator's state, not a CPU one's
    outputs = []
    for seed in (1, 2):
        augmenter = PerlinAnomalyAugmenter(texture_dir, source_size=64, seed=seed)
        augmenter.set_rng_state(foreign)
        with caplog.at_level(logging.WARNING, logger=LOGGER):
            outputs.append(augmenter(x).image)
    assert torch.equal(outputs[0], outputs[1])  # derived from the state, not from the seed
    assert sum("is not the state of a CPU generator" in message for message in _warnings(caplog)) == 2


def test_reseed_restarts_the_stream(texture_dir: Path) -> None:
    x = _images(16)
    augmenter = PerlinAnomalyAugmenter(texture_dir, source_size=64, seed=1)
    augmenter(x)
    augmenter.reseed(42)
    fresh = PerlinAnomalyAugmenter(texture_dir, source_size=64, seed=42)
    assert torch.equal(augmenter(x).image, fresh(x).image)


def test_normal_rotation_changes_the_clean_image(texture_dir: Path) -> None:
    augmenter = PerlinAnomalyAugmenter(
        texture_dir,
        source_size=64,
        anomaly_probability=0.0,
        normal_rotation_probability=1.0,
        normal_rotation_range=(45.0, 45.0),
        seed=0,
    )
    x = _images(4) * 0.5 + 0.5
    out = augmenter(x)
    assert torch.equal(out.image, out.clean) and not torch.equal(out.clean, x)
    assert out.mask.sum() == 0 and out.label.sum() == 0
    assert (out.clean[:, :, 0, 0] == 0).all()  # zero fill in the corners
    assert torch.equal(PerlinAnomalyAugmenter(texture_dir, source_size=64, anomaly_probability=0.0)(x).image, x)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16])
def test_other_float_dtypes(texture_dir: Path, dtype: torch.dtype) -> None:
    x = _images(8).to(dtype)
    out = PerlinAnomalyAugmenter(texture_dir, source_size=64, anomaly_probability=1.0, seed=0)(x)
    assert out.image.dtype == dtype and out.mask.dtype == dtype
    outside = out.mask.expand_as(x) == 0
    assert torch.equal(out.image[outside], x[outside])


def test_procedural_source_and_resized_bank(caplog: pytest.LogCaptureFixture, texture_dir: Path) -> None:
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        augmenter = PerlinAnomalyAugmenter(anomaly_probability=1.0, seed=0)
    assert len(_warnings(caplog)) == 1
    out = augmenter(_images(4, 48))
    assert out.image.shape == (4, 3, 48, 48) and out.label.sum() > 0
    assert "source=procedural" in repr(augmenter) and "bank_size=0" in repr(augmenter)
    other_size = PerlinAnomalyAugmenter(texture_dir, source_size=32, anomaly_probability=1.0, seed=0)
    assert other_size(_images(4, 48)).image.shape == (4, 3, 48, 48)
    assert f"source={texture_dir}" in repr(other_size) and "bank_size=6" in repr(other_size)


def test_no_gradient_and_no_texture_in_state_dict(texture_dir: Path) -> None:
    augmenter = PerlinAnomalyAugmenter(texture_dir, source_size=64, anomaly_probability=1.0, seed=0)
    x = _images(2).requires_grad_()
    assert not augmenter(x).image.requires_grad
    assert augmenter.state_dict() == {}


@pytest.mark.parametrize(
    "bad", [torch.rand(2, 1, 8, 8), torch.rand(3, 8, 8), torch.zeros(2, 3, 8, 8, dtype=torch.uint8)]
)
def test_bad_input_raises(bad: torch.Tensor) -> None:
    with pytest.raises(ValueError, match=r"image must be a float \(B, 3, H, W\)"):
        PerlinAnomalyAugmenter(seed=0)(bad)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"anomaly_probability": 1.5}, "anomaly_probability"),
        ({"normal_rotation_probability": -0.1}, "normal_rotation_probability"),
        ({"beta_range": (0.5, 0.2)}, "beta_range"),
        ({"beta_range": (-0.1, 0.5)}, "beta_range"),
        ({"beta_range": (0.5, 1.2)}, "beta_range"),
        ({"threshold": 1.0}, "threshold"),
        ({"threshold": (0.6, 0.4)}, "threshold"),
        ({"scale_exponent_range": (4, 2)}, "scale_exponent_range"),
        ({"scale_exponent_range": (0, 2.5)}, "scale_exponent_range"),
        ({"num_ops": 0}, "num_ops"),
        ({"num_ops": 11}, "num_ops"),
        ({"ops": ["invert"], "num_ops": 2}, "num_ops"),
        ({"ops": ["invert", "blur"]}, "ops"),
        ({"ops": ["invert", "invert"], "num_ops": 1}, "ops"),
        ({"rotation_range": (90.0, -90.0)}, "rotation_range"),
        ({"normal_rotation_range": (90.0, -90.0)}, "normal_rotation_range"),
        ({"source_size": 0}, "size"),
        ({"max_source_images": 0}, "max_images"),
        ({"seed": 1.5}, "seed"),
    ],
)
def test_validation_names_the_parameter(kwargs: dict, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        PerlinAnomalyAugmenter(**kwargs)


def test_unknown_op_lists_valid_names() -> None:
    with pytest.raises(ValueError, match="hue_saturation"):
        PerlinAnomalyAugmenter(ops=["blur"], num_ops=1)


def test_presets(texture_dir: Path) -> None:
    original = PerlinAnomalyAugmenter.from_preset("original", anomaly_source_path=texture_dir, seed=0)
    assert original.normal_rotation_probability == 0.3 and original.normal_rotation_range == (-90.0, 90.0)
    assert original.beta_range == (0.0, 0.8) and original.threshold == 0.5 and original.ops == TEXTURE_OPS
    assert original.num_ops == 3 and original.anomaly_probability == 0.5
    paper = PerlinAnomalyAugmenter.from_preset("paper", anomaly_source_path=texture_dir, seed=0)
    assert paper.beta_range == (0.0, 0.9) and paper.threshold == (0.3, 0.7)
    assert paper.normal_rotation_probability == 0.3 and paper.normal_rotation_range == (-45.0, 45.0)
    assert paper.ops == PAPER_OPS and len(PAPER_OPS) == 7
    overridden = PerlinAnomalyAugmenter.from_preset("paper", anomaly_source_path=texture_dir, beta_range=(0.1, 0.2))
    assert overridden.beta_range == (0.1, 0.2)
    with pytest.raises(ValueError, match=r"unknown augmentation preset 'draem'.*'original', 'paper'"):
        PerlinAnomalyAugmenter.from_preset("draem")


def test_module_exports_the_ops_table() -> None:
    assert set(TEXTURE_OPS) == set(RANDOM_TEXTURE_OPS) and len(TEXTURE_OPS) == 10
    assert set(PAPER_OPS) < set(TEXTURE_OPS)
    assert aug_module.IMAGE_EXTENSIONS == (".bmp", ".jpeg", ".jpg", ".png", ".tif", ".tiff", ".webp")


@pytest.mark.skipif(not (SHARED_TEXTURES / "dtd_lowres").is_dir(), reason="shared DTD textures not available")
def test_real_dtd_textures() -> None:
    augmenter = PerlinAnomalyAugmenter(
        SHARED_TEXTURES / "dtd_lowres", source_size=64, max_source_images=50, anomaly_probability=1.0, seed=0
    )
    assert len(augmenter.bank) == 50
    assert augmenter.bank.images.float().std() > 20  # real, varied textures
    out = augmenter(_images(8))
    assert out.label.sum() > 0 and out.image.min() >= 0 and out.image.max() <= 1
