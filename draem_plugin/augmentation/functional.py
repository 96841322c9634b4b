"""Batched texture ops of the original DRÆM that kornia does not provide in the same form, one parameter per sample.

Every op takes a float batch ``(B, 3, H, W)`` in ``[0, 1]`` and per-sample parameter tensors of shape ``(B,)``
(``(B, C)`` where noted) and returns the same shape in ``[0, 1]``. The other ops the augmenter uses come from kornia
(``sharpness``, ``posterize``, ``solarize``, ``invert``, ``equalize``, ``rotate``); :mod:`.texture_ops` lists them
all with the ranges their parameters are drawn from.

Example:
    >>> import torch
    >>> gamma_contrast(torch.full((1, 3, 1, 1), 0.25), torch.tensor([2.0]))[0, :, 0, 0]
    tensor([0.0625, 0.0625, 0.0625])
"""

from __future__ import annotations

import torch
from kornia import color
from torch import Tensor

__all__ = ["BRIGHTNESS_SPACES", "adjust_brightness", "autocontrast", "gamma_contrast", "shift_hue_saturation"]

#: imgaug's ``WithBrightnessChannels`` colour spaces, in its order: (to, from, brightness channel, channel range).
#: imgaug works on cv2's uint8 encodings, where each brightness channel spans 0..255; kornia's span 0..1 or 0..100.
BRIGHTNESS_SPACES = (
    ("YCrCb", color.rgb_to_ycbcr, color.ycbcr_to_rgb, 0, 1.0),
    ("HSV", color.rgb_to_hsv, color.hsv_to_rgb, 2, 1.0),
    ("HLS", color.rgb_to_hls, color.hls_to_rgb, 1, 1.0),
    ("Lab", color.rgb_to_lab, color.lab_to_rgb, 0, 100.0),
    ("Luv", color.rgb_to_luv, color.luv_to_rgb, 0, 100.0),
    ("YUV", color.rgb_to_yuv, color.yuv_to_rgb, 0, 1.0),
)


def _per_sample(value: Tensor, image: Tensor) -> Tensor:
    """View a ``(B,)`` or ``(B, C)`` parameter so it broadcasts against ``(B, C, H, W)``."""
    return value.to(image.dtype).view(value.shape[0], -1, 1, 1)


def gamma_contrast(image: Tensor, gamma: Tensor) -> Tensor:
    """Gamma contrast ``x ** gamma`` with one gamma per sample ``(B,)`` or per sample and channel ``(B, C)``.

    Example:
        >>> gamma_contrast(torch.full((1, 3, 2, 2), 0.25), torch.tensor([[0.5, 1.0, 2.0]]))[0, :, 0, 0]
        tensor([0.5000, 0.2500, 0.0625])
    """
    return image.clamp(0.0, 1.0).pow(_per_sample(gamma, image))


def adjust_brightness(image: Tensor, space: Tensor, multiplier: Tensor, offset: Tensor, add_first: Tensor) -> Tensor:
    """Imgaug's ``MultiplyAndAddToBrightness`` per sample: scale and shift the brightness channel of a colour space.

    Sample ``b`` is converted to colour space ``space[b]`` (an index into :data:`BRIGHTNESS_SPACES`: Y of YCrCb,
    V of HSV, L of HLS, L of Lab, L of Luv, Y of YUV), its brightness channel becomes ``c * multiplier + offset``
    (or ``(c + offset) * multiplier`` where ``add_first``), clipped to the channel's range, and the sample is
    converted back. ``offset`` is in units of the full channel range (imgaug's ``add`` of -30..30 on 0..255 is
    -30/255..30/255). Every space is computed for the whole batch and the samples pick theirs, so nothing waits for
    the device.

    Example:
        >>> grey = torch.full((2, 3, 1, 1), 0.5)
        >>> out = adjust_brightness(grey, torch.tensor([0, 1]), torch.tensor([1.2, 1.2]), torch.tensor([0.1, 0.1]),
        ...                         torch.tensor([False, True]))
        >>> out[:, 0, 0, 0]
        tensor([0.7000, 0.7200])
    """
    multiplier, offset = _per_sample(multiplier, image)[:, 0], _per_sample(offset, image)[:, 0]
    add_first = add_first.view(-1, 1, 1)
    out = image
    for index, (_, forward, backward, channel, span) in enumerate(BRIGHTNESS_SPACES):
        converted = forward(image)
        value = converted[:, channel]
        shift = offset * span
        value = torch.where(add_first, (value + shift) * multiplier, value * multiplier + shift).clamp(0.0, span)
        adjusted = backward(torch.cat((converted[:, :channel], value[:, None], converted[:, channel + 1 :]), dim=1))
        out = torch.where((space == index).view(-1, 1, 1, 1), adjusted.clamp(0.0, 1.0), out)
    return out


def shift_hue_saturation(image: Tensor, hue: Tensor, saturation: Tensor) -> Tensor:
    """Rotate the HSV hue by ``hue`` degrees and add ``saturation`` (in ``[-1, 1]``) to S, per sample.

    Same result as ``hsv_to_rgb`` of the shifted ``rgb_to_hsv`` (kornia; grey pixels have hue 0), computed directly
    on the HSV hexcone: V (the channel maximum) is kept, and each channel of the shifted colour is
    ``V - V * S' * clamp(min(k, 4 - k), 0, 1)`` with ``k = (n + H' / 60) mod 6`` and ``n = 5, 3, 1`` for R, G, B.

    Example:
        >>> red = torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1)
        >>> shift_hue_saturation(red, torch.tensor([120.0]), torch.tensor([0.0]))[0, :, 0, 0]
        tensor([0., 1., 0.])
    """
    red, green, blue = image.unbind(1)
    high = image.amax(dim=1)
    delta = high - image.amin(dim=1)
    inverse = 1.0 / torch.where(delta > 0, delta, 1.0)
    sextant = torch.where(  # hue in sixths of a turn, channel of the first maximum as in torch.max
        high == red,
        (green - blue) * inverse,
        torch.where(high == green, (blue - red) * inverse + 2.0, (red - green) * inverse + 4.0),
    )
    sextant = sextant + _per_sample(hue, image)[:, 0] / 60.0
    sat = delta / torch.where(high > 0, high, 1.0)
    chroma = high * (sat + _per_sample(saturation, image)[:, 0]).clamp_(0.0, 1.0)
    channels = []
    for offset in (5.0, 3.0, 1.0):
        k = torch.remainder(sextant + offset, 6.0)
        channels.append(high - chroma * torch.minimum(k, 4.0 - k).clamp_(0.0, 1.0))
    return torch.stack(channels, dim=1)


def autocontrast(image: Tensor, cutoff: Tensor | None = None) -> Tensor:
    """PIL's ``ImageOps.autocontrast`` per sample and channel, with a per-sample ``cutoff`` in percent.

    For each channel the ``floor(n * cutoff / 100)`` darkest and as many brightest of its ``n`` pixels are set
    aside; the darkest and brightest remaining values become 0 and 1, and the channel is stretched linearly between
    them (values beyond are clipped). A channel whose remaining values are all equal is left as it is. With
    ``cutoff`` 0 (or ``None``) each channel is stretched from its minimum to its maximum.

    Example:
        >>> autocontrast(torch.tensor([0.2, 0.4, 0.6]).view(1, 1, 1, 3))
        tensor([[[[0.0000, 0.5000, 1.0000]]]])
        >>> autocontrast(torch.tensor([0.0, 0.4, 0.5, 0.6, 1.0]).view(1, 1, 1, 5), torch.tensor([20.0]))
        tensor([[[[0.0000, 0.0000, 0.5000, 1.0000, 1.0000]]]])
    """
    pixels = image.flatten(2)
    count = pixels.shape[-1]
    if cutoff is None:
        low, high = pixels.amin(dim=-1), pixels.amax(dim=-1)
    else:
        cut = (count * cutoff.to(torch.float64) / 100.0).floor().long().clamp_(0, (count - 1) // 2)
        ordered = pixels.sort(dim=-1).values
        low = ordered.gather(-1, cut.view(-1, 1, 1).expand(-1, pixels.shape[1], 1)).squeeze(-1)
        high = ordered.gather(-1, (count - 1 - cut).view(-1, 1, 1).expand(-1, pixels.shape[1], 1)).squeeze(-1)
    low, span = low[..., None, None], (high - low)[..., None, None]
    stretched = ((image - low) / span.clamp_min(torch.finfo(image.dtype).tiny)).clamp_(0.0, 1.0)
    return torch.where(span > 0, stretched, image)
