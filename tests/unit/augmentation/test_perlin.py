"""Tests of the batched Perlin noise and the DRÆM anomaly masks."""

from __future__ import annotations

import math

import pytest
import torch

from draem_plugin.augmentation.perlin import perlin_mask, rand_perlin_2d


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _fade(t: torch.Tensor) -> torch.Tensor:
    return 6 * t**5 - 15 * t**4 + 10 * t**3


def _gather_reference(batch: int, height: int, width: int, scales: torch.Tensor, seed: int) -> torch.Tensor:
    """Textbook per-pixel Perlin: gather the 4 corner gradients of every pixel and blend them."""
    lattice = int(scales.max()) + 1
    angles = torch.rand(batch, lattice, lattice, generator=_gen(seed)) * (2 * math.pi)
    grads = torch.stack((torch.cos(angles), torch.sin(angles)), dim=-1)
    ys = torch.arange(height).float() * scales[:, :1].float() / height
    xs = torch.arange(width).float() * scales[:, 1:].float() / width
    y0, x0 = ys.floor(), xs.floor()
    fy, fx = (ys - y0)[:, :, None], (xs - x0)[:, None, :]
    y0, x0 = y0.long()[:, :, None], x0.long()[:, None, :]
    b = torch.arange(batch)[:, None, None]

    def corner(dy: int, dx: int) -> torch.Tensor:
        g = grads[b, y0 + dy, x0 + dx]
        return g[..., 0] * (fy - dy) + g[..., 1] * (fx - dx)

    ty, tx = _fade(fy), _fade(fx)
    top = torch.lerp(corner(0, 0), corner(1, 0), ty)
    bottom = torch.lerp(corner(0, 1), corner(1, 1), ty)
    return math.sqrt(2) * torch.lerp(top, bottom, tx)


@pytest.mark.parametrize(("height", "width"), [(64, 64), (97, 50), (33, 128)])
def test_equals_per_pixel_gather_reference(height: int, width: int) -> None:
    scales = torch.tensor([[1, 1], [32, 2], [5, 7], [32, 32], [3, 16]])
    ours = rand_perlin_2d(5, height, width, scales, generator=_gen(3))
    reference = _gather_reference(5, height, width, scales, seed=3)
    torch.testing.assert_close(ours, reference, atol=1e-5, rtol=0)


def test_shape_dtype_and_range() -> None:
    scales = 2 ** torch.randint(0, 6, (16, 2), generator=_gen(1))
    noise = rand_perlin_2d(16, 64, 80, scales, generator=_gen(2))
    assert noise.shape == (16, 64, 80)
    assert noise.dtype == torch.float32
    # 2D Perlin noise is bounded by sqrt(2)/2, times the sqrt(2) scaling: [-1, 1].
    assert noise.abs().max() <= 1.0 + 1e-5
    assert noise.std() > 0.1
    assert abs(noise.mean()) < 0.05


def test_zero_on_lattice_nodes() -> None:
    noise = rand_perlin_2d(1, 64, 64, torch.tensor([[4, 8]]), generator=_gen())
    nodes = noise[0, ::16, ::8]  # y every 64 / 4, x every 64 / 8 pixels
    assert nodes.abs().max() < 1e-6
    assert noise[0, 8, 4].abs() > 0  # between nodes it is not


def _mean_abs_gradient(noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    gy = (noise[:, 1:] - noise[:, :-1]).abs().mean(dim=(1, 2))
    gx = (noise[:, :, 1:] - noise[:, :, :-1]).abs().mean(dim=(1, 2))
    return gy, gx


def test_per_sample_scales_set_the_spatial_frequency() -> None:
    scales = torch.tensor([[1, 1], [2, 2], [4, 4], [8, 8], [16, 16], [32, 32]])
    # average over several seeds: per-sample gradient magnitude grows with the lattice resolution
    per_seed = [torch.stack(_mean_abs_gradient(rand_perlin_2d(6, 128, 128, scales, _gen(s)))) for s in range(8)]
    gy, gx = torch.stack(per_seed).mean(dim=0)
    assert torch.all(gy[1:] > 1.5 * gy[:-1]), gy
    assert torch.all(gx[1:] > 1.5 * gx[:-1]), gx


def test_scales_are_per_axis() -> None:
    noise = rand_perlin_2d(2, 128, 128, torch.tensor([[1, 16], [16, 1]]), generator=_gen())
    gy, gx = _mean_abs_gradient(noise)
    assert gx[0] > 4 * gy[0]
    assert gy[1] > 4 * gx[1]


def test_determinism() -> None:
    scales = torch.tensor([[2, 8], [32, 1]])
    first = rand_perlin_2d(2, 40, 40, scales, generator=_gen(7))
    assert torch.equal(first, rand_perlin_2d(2, 40, 40, scales, generator=_gen(7)))
    assert not torch.equal(first, rand_perlin_2d(2, 40, 40, scales, generator=_gen(8)))


def test_not_divisible_by_scale() -> None:
    noise = rand_perlin_2d(2, 37, 23, torch.tensor([[32, 32], [7, 3]]), generator=_gen())
    assert noise.shape == (2, 37, 23)
    assert torch.isfinite(noise).all()
    assert noise.abs().max() <= 1.0 + 1e-5


def test_empty_batch() -> None:
    assert rand_perlin_2d(0, 8, 8, torch.zeros(0, 2, dtype=torch.long)).shape == (0, 8, 8)
    assert perlin_mask(0, 8, 8).shape == (0, 1, 8, 8)


@pytest.mark.parametrize(
    "scales",
    [
        torch.ones(2, 2),
        torch.ones(3, 2, dtype=torch.long),
        torch.ones(2, 3, dtype=torch.long),
        torch.zeros(2, 2, dtype=torch.long),
    ],
)
def test_bad_scales_raise(scales: torch.Tensor) -> None:
    with pytest.raises(ValueError, match="scales"):
        rand_perlin_2d(2, 16, 16, scales)


def test_mask_binary_shape_and_determinism() -> None:
    mask = perlin_mask(32, 64, 48, generator=_gen(5))
    assert mask.shape == (32, 1, 64, 48)
    assert mask.dtype == torch.float32
    assert set(mask.unique().tolist()) == {0.0, 1.0}
    assert 0.01 < mask.mean() < 0.4
    assert torch.equal(mask, perlin_mask(32, 64, 48, generator=_gen(5)))
    assert not torch.equal(mask, perlin_mask(32, 64, 48, generator=_gen(6)))


def test_higher_threshold_gives_a_subset() -> None:
    low = perlin_mask(16, 64, 64, threshold=0.3, generator=_gen(1))
    high = perlin_mask(16, 64, 64, threshold=0.7, generator=_gen(1))
    assert torch.all(high <= low)
    assert high.sum() < low.sum()


def test_threshold_range_is_drawn_per_sample() -> None:
    low = perlin_mask(64, 64, 64, threshold=0.3, generator=_gen(2))
    high = perlin_mask(64, 64, 64, threshold=0.7, generator=_gen(2))
    drawn = perlin_mask(64, 64, 64, threshold=(0.3, 0.7), generator=_gen(2))
    # the noise is drawn before the thresholds, so the per-sample threshold lies between the fixed ones
    assert torch.all(high <= drawn) and torch.all(drawn <= low)
    area = {name: m.sum(dim=(1, 2, 3)) for name, m in (("low", low), ("high", high), ("drawn", drawn))}
    strictly_between = (area["high"] < area["drawn"]) & (area["drawn"] < area["low"])
    assert strictly_between.sum() > 16  # thresholds differ between samples
    degenerate = perlin_mask(8, 32, 32, threshold=(0.5, 0.5), generator=_gen(4))
    assert torch.equal(degenerate, perlin_mask(8, 32, 32, threshold=0.5, generator=_gen(4)))


def test_rotation_zero_fills_outside_the_rotated_noise() -> None:
    mask = perlin_mask(64, 64, 64, rotation_range=(45.0, 45.0), threshold=0.1, generator=_gen())
    corners = mask[:, 0, [0, 0, -1, -1], [0, -1, 0, -1]]
    assert corners.sum() == 0
    unrotated = perlin_mask(64, 64, 64, rotation_range=(0.0, 0.0), threshold=0.1, generator=_gen())
    assert unrotated[:, 0, [0, 0, -1, -1], [0, -1, 0, -1]].sum() > 0


def test_scale_exponent_range_sets_blob_size() -> None:
    coarse = perlin_mask(32, 64, 64, scale_exponent_range=(0, 2), generator=_gen())
    fine = perlin_mask(32, 64, 64, scale_exponent_range=(4, 6), generator=_gen())

    def edges_per_area(mask: torch.Tensor) -> torch.Tensor:
        return (mask[..., 1:] != mask[..., :-1]).float().sum() / mask.sum().clamp_min(1)

    assert edges_per_area(fine) > 3 * edges_per_area(coarse)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"scale_exponent_range": (3, 3)}, "scale_exponent_range"),
        ({"scale_exponent_range": (-1, 2)}, "scale_exponent_range"),
        ({"scale_exponent_range": (0.0, 2)}, "scale_exponent_range"),
        ({"threshold": 1.5}, "threshold"),
        ({"threshold": 0.0}, "threshold"),
        ({"threshold": (0.7, 0.3)}, "threshold"),
        ({"rotation_range": (10.0, -10.0)}, "rotation_range"),
    ],
)
def test_mask_validation(kwargs: dict, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        perlin_mask(2, 16, 16, **kwargs)
