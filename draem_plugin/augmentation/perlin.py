"""Batched 2D Perlin noise and DRÆM anomaly masks.

Every function draws its randomness from an optional ``torch.Generator`` that lives on the
output device, so the same seed gives the same noise, and works on a whole batch at once
with a different lattice resolution per sample.

Example:
    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> perlin_mask(4, 64, 64, generator=g).shape
    torch.Size([4, 1, 64, 64])
"""

from __future__ import annotations

import math

import torch
from kornia.geometry.transform import rotate
from torch import Tensor

from .sampling import draw_device, rand_on, uniform_on

__all__ = ["check_mask_parameters", "perlin_mask", "rand_perlin_2d"]


def _fade(t: Tensor) -> Tensor:
    """Quintic fade curve ``6t^5 - 15t^4 + 10t^3``."""
    return t * t * t * (t * (t * 6.0 - 15.0) + 10.0)


def _resolve_device(device: torch.device | str | None, generator: torch.Generator | None) -> torch.device:
    """Use ``device`` if given, else the generator's device, else the CPU."""
    if device is not None:
        return torch.device(device)
    return generator.device if generator is not None else torch.device("cpu")


def _corner_weights(size: int, cells: Tensor, lattice: int) -> tuple[Tensor, Tensor]:
    """Interpolation matrices of one axis, each of shape ``(B, size, lattice)``.

    Pixel ``i`` of a sample with ``r`` cells sits at lattice coordinate ``c + f = i * r / size``.
    ``plain[b, i, k]`` holds the fade weight of lattice node ``k`` (``1 - fade(f)`` for ``k = c``,
    ``fade(f)`` for ``k = c + 1``, zero elsewhere) and ``offset`` the same weight times the signed
    distance ``f - (k - c)`` from that node, which the gradient along this axis is dotted with.
    """
    coord = torch.arange(size, device=cells.device, dtype=torch.float32) * cells[:, None].float() / size
    cell = coord.floor()
    frac = coord - cell
    fade = _fade(frac)
    nodes = torch.arange(lattice, device=cells.device)
    step = nodes.view(1, 1, -1) - cell.long().unsqueeze(-1)  # 0 at the lower node, 1 at the upper one
    weight = torch.where(step == 0, (1.0 - fade).unsqueeze(-1), torch.where(step == 1, fade.unsqueeze(-1), 0.0))
    return weight, weight * (frac.unsqueeze(-1) - step)


def rand_perlin_2d(
    batch: int,
    height: int,
    width: int,
    scales: Tensor,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """Draw a batch of 2D gradient (Perlin) noise fields with a lattice resolution per sample.

    As in DRÆM's ``rand_perlin_2d``: unit gradients with uniform random angles sit on the lattice
    nodes, each pixel dots the gradients of its 4 surrounding nodes with its offsets to them, and
    the 4 values are blended with the quintic fade curve and scaled by ``sqrt(2)``, which gives
    values roughly in ``[-1, 1]``. ``height`` and ``width`` need not be multiples of the scales.

    The gradients live on a ``(B, S + 1, S + 1)`` lattice (``S`` the largest scale of the batch).
    Because the node a pixel reads along ``y`` depends only on its row and along ``x`` only on its
    column, the interpolation is separable: the noise is computed as two batched matrix products
    ``Wy @ G @ Wx^T`` (corner weights by lattice gradients), which equals gathering the 4 corner
    gradients per pixel but costs ``O(H W S)`` instead of ``O(H W)`` random memory reads.

    Args:
        batch: Number of noise fields ``B``.
        height: Output height ``H``.
        width: Output width ``W``.
        scales: Integer tensor ``(B, 2)``: lattice cells along ``(y, x)`` per sample, each >= 1.
        generator: Source of randomness, on the output device or on the CPU (the few random numbers are then
            drawn on the host and copied over, without waiting for the device). ``None``: torch's global RNG.
        device: Output device; defaults to the generator's device, else the CPU.

    Returns:
        Float tensor ``(B, H, W)``.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> scales = torch.tensor([[1, 1], [4, 8]])
        >>> noise = rand_perlin_2d(2, 48, 40, scales, generator=g)
        >>> noise.shape, bool(noise.abs().max() <= 1.5)
        (torch.Size([2, 48, 40]), True)
    """
    if batch < 0 or height < 1 or width < 1:
        raise ValueError(f"batch must be >= 0 and height, width >= 1, got batch={batch}, {height}x{width}.")
    if scales.shape != (batch, 2) or scales.is_floating_point() or scales.is_complex():
        raise ValueError(
            f"scales must be an integer tensor of shape (batch, 2) = ({batch}, 2) holding the lattice cells "
            f"along (y, x), got dtype {scales.dtype} and shape {tuple(scales.shape)}."
        )
    device = _resolve_device(device, generator)
    if batch == 0:
        return torch.empty(0, height, width, device=device)
    smallest, largest = torch.stack(scales.aminmax()).tolist()  # no device sync when the scales are on the host
    scales = scales.to(device, non_blocking=True)
    if smallest < 1:
        raise ValueError(f"scales must be >= 1 (lattice cells per axis), got a minimum of {smallest}.")
    lattice = largest + 1
    angles = rand_on((batch, lattice, lattice), generator, device) * (2.0 * math.pi)
    grad_y, grad_x = torch.cos(angles), torch.sin(angles)
    weight_y, offset_y = _corner_weights(height, scales[:, 0], lattice)
    weight_x, offset_x = _corner_weights(width, scales[:, 1], lattice)
    # noise = sum over corners of fade_y * fade_x * (g_y * dy + g_x * dx), split into its two dot-product terms.
    rows = torch.cat((offset_y @ grad_y, weight_y @ grad_x), dim=2)  # (B, H, 2 * lattice)
    cols = torch.cat((weight_x, offset_x), dim=2).transpose(1, 2)  # (B, 2 * lattice, W)
    return math.sqrt(2.0) * (rows @ cols)


def check_mask_parameters(
    scale_exponent_range: tuple[int, int],
    rotation_range: tuple[float, float],
    threshold: float | tuple[float, float],
) -> None:
    """Validate the :func:`perlin_mask` settings, naming the parameter and its expected form."""
    lo, hi = scale_exponent_range
    if not (isinstance(lo, int) and isinstance(hi, int) and 0 <= lo < hi):
        raise ValueError(
            f"scale_exponent_range must be two ints with 0 <= lo < hi (hi exclusive), got {scale_exponent_range!r}; "
            "the original DRÆM uses (0, 6), i.e. 1..32 lattice cells."
        )
    if len(rotation_range) != 2 or rotation_range[0] > rotation_range[1]:
        raise ValueError(f"rotation_range must be (lo, hi) degrees with lo <= hi, got {rotation_range!r}.")
    if isinstance(threshold, (tuple, list)):
        if len(threshold) != 2 or not 0.0 < threshold[0] <= threshold[1] < 1.0:
            raise ValueError(
                f"threshold range must be (lo, hi) with 0 < lo <= hi < 1, got {threshold!r}; e.g. (0.3, 0.7)."
            )
    elif not 0.0 < float(threshold) < 1.0:
        raise ValueError(f"threshold must lie in (0, 1), got {threshold!r}; the original DRÆM uses 0.5.")


def perlin_mask(
    batch: int,
    height: int,
    width: int,
    *,
    scale_exponent_range: tuple[int, int] = (0, 6),
    rotation_range: tuple[float, float] = (-90.0, 90.0),
    threshold: float | tuple[float, float] = 0.5,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """Draw binary DRÆM anomaly masks from thresholded, rotated Perlin noise.

    Per sample: lattice cells ``2**randint(lo, hi)`` (``hi`` exclusive) drawn independently along
    ``y`` and ``x``, the noise rotated by ``U(rotation_range)`` degrees (zero outside the rotated
    field, as imgaug's ``Affine``) and thresholded with ``noise > threshold``. A float threshold is
    fixed (the original code); a ``(lo, hi)`` tuple is drawn uniformly per sample (the paper's text).

    Args:
        batch: Number of masks ``B``.
        height: Mask height ``H``.
        width: Mask width ``W``.
        scale_exponent_range: ``(lo, hi)`` of the lattice-cell exponent, ``0 <= lo < hi``.
        rotation_range: ``(lo, hi)`` rotation of the noise in degrees.
        threshold: Fixed threshold in ``(0, 1)`` or a ``(lo, hi)`` range to draw it from.
        generator: Source of randomness, on the output device or on the CPU (the few random numbers are then
            drawn on the host and copied over, without waiting for the device). ``None``: torch's global RNG.
        device: Output device; defaults to the generator's device, else the CPU.

    Returns:
        Float tensor ``(B, 1, H, W)`` with values in ``{0, 1}``.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> mask = perlin_mask(2, 32, 32, threshold=(0.3, 0.7), generator=g)
        >>> mask.shape, sorted(mask.unique().tolist()) in ([0.0], [0.0, 1.0])
        (torch.Size([2, 1, 32, 32]), True)
    """
    check_mask_parameters(scale_exponent_range, rotation_range, threshold)
    device = _resolve_device(device, generator)
    lo, hi = scale_exponent_range
    scales = torch.randint(lo, hi, (batch, 2), generator=generator, device=draw_device(generator, device))
    noise = rand_perlin_2d(batch, height, width, scales.exp2().long(), generator=generator, device=device).unsqueeze(1)
    if batch == 0:
        return noise
    angle = uniform_on(batch, *rotation_range, generator, device)
    noise = rotate(noise, angle, padding_mode="zeros")
    if isinstance(threshold, (tuple, list)):
        cut = uniform_on((batch, 1, 1, 1), *threshold, generator, device)
        return (noise > cut).float()
    return (noise > threshold).float()
