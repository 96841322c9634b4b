"""PerlinAnomalyAugmenter: synthesis, blend, random stream, presets, validation."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from draem_plugin.augmentation import PAPER_OPS, TEXTURE_OPS, AugmentedBatch, PerlinAnomalyAugmenter

SHARED_TEXTURES = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "textures"
LOGGER = "draem_plugin.augmentation.augmenter"
TEXTURE_LOGGER = "draem_plugin.augmentation.textures"


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture
def constant_texture(tmp_path: Path) -> Path:
    path = tmp_path / "grey.png"
    Image.fromarray(np.full((64, 64, 3), 51, dtype=np.uint8)).save(path)  # 51 / 255 = 0.2
    return path


def _warnings(caplog: pytest.LogCaptureFixture, logger: str = LOGGER) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == logger and r.levelno == logging.WARNING]


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
    assert all(torch.equal(u, v) for u, v in zip(a, b, strict=True))
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
    with caplog.at_level(logging.WARNING, logger=TEXTURE_LOGGER):
        augmenter = PerlinAnomalyAugmenter(anomaly_probability=1.0, seed=0)
    assert len(_warnings(caplog, TEXTURE_LOGGER)) == 1
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
        ({"max_source_images": 0}, r"max_images \(max_source_images of DraemPlugin\) must be a positive int"),
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


@pytest.mark.skipif(not (SHARED_TEXTURES / "dtd_lowres").is_dir(), reason="shared DTD textures not available")
def test_real_dtd_textures() -> None:
    augmenter = PerlinAnomalyAugmenter(
        SHARED_TEXTURES / "dtd_lowres", source_size=64, max_source_images=50, anomaly_probability=1.0, seed=0
    )
    assert len(augmenter.bank) == 50
    assert augmenter.bank.images.float().std() > 20  # real, varied textures
    out = augmenter(_images(8))
    assert out.label.sum() > 0 and out.image.min() >= 0 and out.image.max() <= 1
