"""The batched texture ops that kornia does not provide in the same form."""

from __future__ import annotations

import math

import kornia
import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from draem_plugin.augmentation.functional import (
    BRIGHTNESS_SPACES,
    adjust_brightness,
    autocontrast,
    gamma_contrast,
    shift_hue_saturation,
)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_gamma_contrast_per_channel() -> None:
    x = torch.full((2, 3, 2, 2), 0.25)
    out = gamma_contrast(x, torch.tensor([[0.5, 1.0, 2.0], [1.0, 1.0, 1.0]]))
    torch.testing.assert_close(out[0, :, 0, 0], torch.tensor([0.5, 0.25, 0.0625]))
    torch.testing.assert_close(out[1], x[1])


@pytest.mark.parametrize("space", range(len(BRIGHTNESS_SPACES)))
@pytest.mark.parametrize("add_first", [False, True])
def test_brightness_scales_and_shifts_the_brightness_channel_of_each_space(space: int, add_first: bool) -> None:
    """imgaug's MultiplyAndAddToBrightness: one colour space per sample, multiply and add in either order."""
    _, forward, backward, channel, span = BRIGHTNESS_SPACES[space]
    x = torch.rand(4, 3, 16, 16, generator=_gen())
    mul, add = torch.tensor([0.8, 1.0, 1.2, 1.1]), torch.tensor([0.1, -0.1, 0.0, 30 / 255])
    converted = forward(x)
    value = converted[:, channel : channel + 1]
    m, a = mul.view(-1, 1, 1, 1), add.view(-1, 1, 1, 1) * span
    value = ((value + a) * m if add_first else value * m + a).clamp(0, span)
    expected = backward(torch.cat((converted[:, :channel], value, converted[:, channel + 1 :]), dim=1)).clamp(0, 1)
    spaces, order = torch.full((4,), space), torch.full((4,), add_first)
    torch.testing.assert_close(adjust_brightness(x, spaces, mul, add, order), expected, atol=1e-4, rtol=0)


def test_brightness_picks_each_samples_own_space() -> None:
    x = torch.rand(6, 3, 8, 8, generator=_gen())
    spaces = torch.arange(6)
    mul, add, order = torch.full((6,), 1.15), torch.full((6,), 0.05), torch.zeros(6, dtype=torch.bool)
    together = adjust_brightness(x, spaces, mul, add, order)
    for index in range(6):
        alone = adjust_brightness(x[index : index + 1], spaces[index : index + 1], mul[:1], add[:1], order[:1])
        torch.testing.assert_close(together[index : index + 1], alone)
    assert (
        len({round(float(together[i].mean()), 4) for i in range(6)} - {round(float(x[i].mean()), 4) for i in range(6)})
        == 6
    )


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


def test_autocontrast_per_channel() -> None:
    x = torch.rand(2, 3, 8, 8, generator=_gen()) * 0.3 + 0.4
    x[1, 2] = 0.5
    out = autocontrast(x)
    assert torch.allclose(out[0].amin(dim=(1, 2)), torch.zeros(3))
    assert torch.allclose(out[0].amax(dim=(1, 2)), torch.ones(3))
    assert torch.equal(out[1, 2], x[1, 2])  # a constant channel is left alone


@pytest.mark.parametrize("cutoff", [0, 1, 7, 20])
def test_autocontrast_with_cutoff_equals_pil(cutoff: int) -> None:
    """PIL's ImageOps.autocontrast (which imgaug's pillike.Autocontrast reproduces), up to PIL's LUT truncation."""
    rng = np.random.default_rng(cutoff)
    array = np.clip(rng.normal(120, 25, (40, 48, 3)), 0, 255).astype(np.uint8)
    array[0, 0] = 0
    array[-1, -1] = 255  # outliers that only the cutoff removes
    expected = np.asarray(ImageOps.autocontrast(Image.fromarray(array), cutoff=cutoff), dtype=np.float64)
    image = torch.from_numpy(array).permute(2, 0, 1)[None].double() / 255
    ours = autocontrast(image, torch.tensor([cutoff]))[0].permute(1, 2, 0).numpy() * 255
    difference = ours - expected
    assert difference.min() >= -1e-6 and difference.max() < 1 + 1e-6  # PIL truncates its lookup table to ints


def test_autocontrast_cutoff_is_per_sample() -> None:
    x = torch.linspace(0, 1, 101).view(1, 1, 1, 101).repeat(2, 1, 1, 1)
    out = autocontrast(x, torch.tensor([0, 20]))
    torch.testing.assert_close(out[0], x[0])
    assert out[1, 0, 0, :21].eq(0).all() and out[1, 0, 0, 80:].eq(1).all()  # 20 of 101 pixels clipped at each end
    torch.testing.assert_close(out[1, 0, 0, 50], torch.tensor(0.5))
