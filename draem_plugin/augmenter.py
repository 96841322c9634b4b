"""DRÆM anomaly synthesis on the batch's device: texture bank, batched texture ops and the augmenter.

A training batch of normal images gets, for a random half of its samples, a Perlin-noise mask inside
which a randomly augmented texture is blended in (Zavrtanik et al., ICCV 2021). Everything is batched:
textures are decoded once into one uint8 tensor that moves with the module, and the texture ops run
on the subsets of samples that drew them.

Example:
    >>> import torch
    >>> augmenter = PerlinAnomalyAugmenter(seed=0)  # procedural textures; pass anomaly_source_path=... for DTD
    >>> out = augmenter(torch.rand(4, 3, 64, 64))
    >>> out.image.shape, out.mask.shape, out.label.shape
    (torch.Size([4, 3, 64, 64]), torch.Size([4, 1, 64, 64]), torch.Size([4]))
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from itertools import repeat
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from kornia.color import rgb_to_y
from kornia.enhance import equalize, invert, solarize
from kornia.geometry.transform import resize, rotate
from PIL import Image
from torch import Tensor, nn

from .perlin import _check_mask_parameters, _draw_device, perlin_mask, rand_on, rand_perlin_2d, randint_on, uniform_on

__all__ = [
    "PAPER_OPS",
    "RANDOM_TEXTURE_OPS",
    "TEXTURE_OPS",
    "AugmentedBatch",
    "PerlinAnomalyAugmenter",
    "TextureBank",
    "adjust_luma",
    "apply_random_texture_ops",
    "autocontrast",
    "enhance_sharpness",
    "gamma_contrast",
    "posterize_bits",
    "procedural_textures",
    "shift_hue_saturation",
]

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".bmp", ".jpeg", ".jpg", ".png", ".tif", ".tiff", ".webp")
_SMALL_SIDE = 32
_MAX_LISTED = 20


# --------------------------------------------------------------------------------------------------
# Texture bank
# --------------------------------------------------------------------------------------------------
def _pair(size: int | Sequence[int], name: str) -> tuple[int, int]:
    """Turn ``size`` into a positive ``(height, width)``."""
    pair = (size, size) if isinstance(size, int) else tuple(size)
    if len(pair) != 2 or not all(isinstance(side, int) and side > 0 for side in pair):
        raise ValueError(f"{name} must be a positive int or a (height, width) pair of them, got {size!r}.")
    return pair


def _find_image_files(source: Path) -> list[Path]:
    """The image file ``source`` itself, or every image file under the folder ``source``, sorted."""
    accepted = ", ".join(IMAGE_EXTENSIONS)
    if not source.exists():
        raise FileNotFoundError(
            f"anomaly source path {source} does not exist. Pass a folder of texture images (e.g. the DTD "
            "'images' folder), a single image file, or None for procedural textures."
        )
    if source.is_file():
        if source.suffix.lower() not in IMAGE_EXTENSIONS:
            raise ValueError(f"anomaly source file {source} is not an image; accepted extensions: {accepted}.")
        return [source]
    files = sorted(path for path in source.rglob("*") if path.suffix.lower() in IMAGE_EXTENSIONS and path.is_file())
    if not files:
        raise FileNotFoundError(
            f"no image files under {source} (searched recursively for {accepted}, any case). "
            "Point anomaly_source_path at a folder of textures, e.g. /path/to/dtd/images."
        )
    return files


def _to_rgb(image: Image.Image) -> Image.Image:
    """Convert any PIL mode to 8-bit RGB; 16-bit grey levels are scaled (not clipped) to 8 bits."""
    if image.mode == "I" or image.mode.startswith("I;16"):
        levels = np.asarray(image, dtype=np.float32) / 257.0  # 65535 -> 255
        return Image.fromarray(np.clip(np.rint(levels), 0, 255).astype(np.uint8)).convert("RGB")
    return image.convert("RGB")  # grey -> 3 equal channels, alpha dropped, palette expanded


def _decode(path: Path, size: tuple[int, int]) -> tuple[np.ndarray, tuple[int, int]] | None:
    """Decode ``path`` as an RGB uint8 array resized to ``size``, with its original size; ``None`` if unreadable."""
    height, width = size
    try:
        with Image.open(path) as image:
            original = image.size
            if image.format == "JPEG":
                image.draft("RGB", (width, height))  # decode at the smallest DCT scale still >= the target
            resized = _to_rgb(image).resize((width, height), Image.Resampling.BILINEAR)
            return np.asarray(resized), original
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return None


def _listing(paths: Sequence[Path]) -> str:
    """Up to ``_MAX_LISTED`` paths, comma-separated."""
    shown = ", ".join(str(path) for path in paths[:_MAX_LISTED])
    return shown + (f", ... ({len(paths) - _MAX_LISTED} more)" if len(paths) > _MAX_LISTED else "")


def _load_images(files: list[Path], size: tuple[int, int], source: Path) -> Tensor:
    """Decode ``files`` (in parallel threads) into one ``(N, 3, H, W)`` uint8 tensor, skipping unreadable ones."""
    images = torch.empty(len(files), 3, *size, dtype=torch.uint8)
    target = images.numpy()  # numpy copies: torch's threaded copy is slow for many small images
    kept = 0
    skipped: list[Path] = []
    small: list[Path] = []
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        for path, decoded in zip(files, pool.map(_decode, files, repeat(size))):
            if decoded is None:
                skipped.append(path)
                continue
            array, original = decoded
            target[kept] = array.transpose(2, 0, 1)
            kept += 1
            if min(original) < _SMALL_SIDE:
                small.append(path)
    if skipped:
        logger.warning(
            "Skipped %d unreadable or corrupt image file(s) under %s: %s", len(skipped), source, _listing(skipped)
        )
    if not kept:
        raise ValueError(
            f"none of the {len(files)} image file(s) under {source} could be decoded; "
            "check the files or point anomaly_source_path at another texture folder."
        )
    if small:
        logger.warning(
            "%d texture image(s) are smaller than %d px on a side and were upscaled to %dx%d: %s",
            len(small), _SMALL_SIDE, *size, _listing(small),
        )
    return images[:kept].clone() if kept < len(files) else images


def procedural_textures(
    batch: int,
    height: int,
    width: int,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """Draw colourful textures from 3-octave Perlin noise, one noise field per channel.

    Each channel is fractal Perlin noise (2 to 8 base lattice cells per axis), stretched to ``[0, 1]``
    and mapped onto a random per-sample, per-channel interval at least 0.3 wide.

    Args:
        batch: Number of textures ``B``.
        height: Texture height ``H``.
        width: Texture width ``W``.
        generator: Source of randomness, on ``device`` or on the CPU. ``None`` uses torch's global RNG.
        device: Output device; defaults to the generator's device, else the CPU.

    Returns:
        Float tensor ``(B, 3, H, W)`` in ``[0, 1]``.

    Example:
        >>> tex = procedural_textures(2, 32, 32, generator=torch.Generator().manual_seed(0))
        >>> tex.shape, bool(tex.min() >= 0) and bool(tex.max() <= 1)
        (torch.Size([2, 3, 32, 32]), True)
    """
    if device is None:
        device = generator.device if generator is not None else torch.device("cpu")
    planes = batch * 3
    base = torch.randint(1, 4, (planes, 2), generator=generator, device=_draw_device(generator, device)).exp2().long()
    noise = sum(
        0.5**octave * rand_perlin_2d(planes, height, width, base * 2**octave, generator=generator, device=device)
        for octave in range(3)
    )
    noise = noise.view(batch, 3, height, width)
    low = noise.amin(dim=(2, 3), keepdim=True)
    high = noise.amax(dim=(2, 3), keepdim=True)
    noise = (noise - low) / (high - low).clamp_min(1e-6)
    span, start = rand_on((2, batch, 3, 1, 1), generator, device).unbind(0)
    span = 0.3 + 0.7 * span  # at least 30 % contrast per channel
    return start * (1.0 - span) + span * noise


class TextureBank(nn.Module):
    """Anomaly-source textures held as one uint8 tensor that moves with the module, or drawn procedurally.

    With a path, every image file under it (recursively; ``.jpg .jpeg .png .bmp .tif .tiff .webp`` in any
    case), or the single image file it names, is decoded once, converted to RGB (grey to 3 equal channels,
    alpha dropped, 16-bit grey scaled to 8 bits) and resized (not cropped) to ``size``, as the original DRÆM
    does with the DTD images at 256x256. The stack is a non-persistent buffer: ``.to(device)`` moves it and
    checkpoints do not contain it. Unreadable files are skipped with one warning.

    With ``source=None`` nothing is loaded: :meth:`sample` draws :func:`procedural_textures` on the fly
    (colourful multi-octave Perlin noise), and one warning at construction says so. Real textures work
    better; give them with e.g. ``anomaly_source_path=/path/to/dtd/images``.

    Args:
        source: Folder of texture images, one image file, or ``None`` for procedural textures.
        size: ``(height, width)`` (or one int) every texture is resized to.
        max_images: Keep a random subset of this many files (seeded by ``seed``); ``None`` keeps all.
        seed: Seed of that subset.

    Example:
        >>> bank = TextureBank(None, size=64)
        >>> len(bank), bank.sample(2, 32, 48).shape
        (0, torch.Size([2, 3, 32, 48]))
    """

    images: Tensor

    def __init__(
        self,
        source: str | Path | None,
        size: int | tuple[int, int] = 256,
        max_images: int | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.size = _pair(size, "size")
        if max_images is not None and (not isinstance(max_images, int) or max_images < 1):
            raise ValueError(f"max_images must be a positive int or None (all images), got {max_images!r}.")
        self.source = None if source is None else Path(source)
        if self.source is None:
            logger.warning(
                "No anomaly_source_path given: anomalies use procedural Perlin-noise textures. The original DRÆM "
                "blends real textures; pass a folder of images, e.g. anomaly_source_path=/path/to/dtd/images."
            )
            images = torch.empty(0, 3, *self.size, dtype=torch.uint8)
        else:
            files = _find_image_files(self.source)
            if max_images is not None and max_images < len(files):
                chosen = torch.randperm(len(files), generator=torch.Generator().manual_seed(seed))[:max_images]
                files = [files[i] for i in sorted(chosen.tolist())]
            images = _load_images(files, self.size, self.source)
        self.register_buffer("images", images, persistent=False)

    def __len__(self) -> int:
        """Number of stored images (0 for the procedural source)."""
        return self.images.shape[0]

    def sample(
        self,
        batch: int,
        height: int,
        width: int,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
    ) -> Tensor:
        """Draw ``batch`` textures (uniformly, with replacement) as floats in ``[0, 1]``.

        Args:
            batch: Number of textures ``B``.
            height: Output height; stored textures are resized (bilinear, antialiased) if it differs.
            width: Output width.
            generator: Source of randomness, on ``device`` or on the CPU. ``None`` uses torch's global RNG.
            device: Output device; defaults to the bank's device.

        Returns:
            Float tensor ``(B, 3, height, width)``.

        Example:
            >>> TextureBank(None).sample(3, 16, 16).shape
            torch.Size([3, 3, 16, 16])
        """
        device = self.images.device if device is None else torch.device(device)
        if len(self) == 0:
            return procedural_textures(batch, height, width, generator=generator, device=device)
        index = randint_on(0, len(self), (batch,), generator, self.images.device)
        textures = self.images.index_select(0, index.to(self.images.device)).to(device).float().div_(255.0)
        if batch and textures.shape[-2:] != (height, width):
            textures = resize(textures, (height, width), interpolation="bilinear", antialias=True).clamp_(0.0, 1.0)
        return textures

    def extra_repr(self) -> str:
        """Source and number of stored images."""
        return f"source={self.source or 'procedural'}, images={len(self)}, size={self.size}"


# --------------------------------------------------------------------------------------------------
# Texture ops (batched; x is (B, 3, H, W) in [0, 1], parameters are per sample)
# --------------------------------------------------------------------------------------------------
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


def adjust_luma(image: Tensor, multiplier: Tensor, offset: Tensor) -> Tensor:
    """Multiply and then add to the luma ``Y`` of YCbCr per sample, keeping the chroma (imgaug's brightness).

    Every RGB channel has weight 1 on ``Y`` in the YCbCr-to-RGB map, so replacing ``Y`` by ``Y'`` adds
    ``Y' - Y`` to all three channels; this is that round trip without the conversions.

    Example:
        >>> adjust_luma(torch.full((1, 3, 1, 1), 0.5), torch.tensor([1.2]), torch.tensor([-0.1]))[0, :, 0, 0]
        tensor([0.5000, 0.5000, 0.5000])
    """
    luma = rgb_to_y(image)
    target = (luma * _per_sample(multiplier, image) + _per_sample(offset, image)).clamp(0.0, 1.0)
    return (image + (target - luma)).clamp(0.0, 1.0)


def shift_hue_saturation(image: Tensor, hue: Tensor, saturation: Tensor) -> Tensor:
    """Rotate the HSV hue by ``hue`` degrees and add ``saturation`` (in ``[-1, 1]``) to S, per sample.

    Same result as ``hsv_to_rgb`` of the shifted ``rgb_to_hsv`` (kornia; grey pixels have hue 0), computed
    directly on the HSV hexcone: V (the channel maximum) is kept, and each channel of the shifted colour is
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


def enhance_sharpness(image: Tensor, factor: Tensor) -> Tensor:
    """PIL's ``ImageEnhance.Sharpness`` per sample: blend towards the 3x3 smoothing ``[[1,1,1],[1,5,1],[1,1,1]]/13``.

    ``factor`` 0 gives the smoothed image, 1 the input, 2 a sharpened one; the 1-pixel border is kept (as
    PIL and ``kornia.enhance.sharpness``, which this equals, computed with separable box sums).

    Example:
        >>> x = torch.zeros(1, 1, 3, 3)
        >>> x[0, 0, 1, 1] = 0.5
        >>> enhance_sharpness(x, torch.tensor([0.0]))[0, 0, 1, 1]
        tensor(0.1923)
    """
    rows = image[..., :-2, :] + image[..., 1:-1, :] + image[..., 2:, :]
    box = rows[..., :-2] + rows[..., 1:-1] + rows[..., 2:]
    smooth = image.clone()
    smooth[..., 1:-1, 1:-1] = ((box + 4.0 * image[..., 1:-1, 1:-1]) / 13.0).clamp_(0.0, 1.0)
    return torch.lerp(smooth, image, _per_sample(factor, image)).clamp_(0.0, 1.0)


def posterize_bits(image: Tensor, bits: Tensor) -> Tensor:
    """Keep the ``bits`` (per sample, 1..8) high bits of the 8-bit levels ``floor(255 x)``, as PIL's posterize.

    Example:
        >>> posterize_bits(torch.full((1, 1, 1, 1), 200 / 255), torch.tensor([4]))[0, 0, 0, 0] * 255
        tensor(192.)
    """
    keep = (255 << (8 - bits.long())) & 255
    levels = (image * 255.0).to(torch.uint8).bitwise_and_(keep.to(torch.uint8).view(-1, 1, 1, 1))
    return levels.to(image.dtype) / 255.0


def autocontrast(image: Tensor) -> Tensor:
    """Stretch each channel of each image to span ``[0, 1]`` (constant channels stay as they are).

    Example:
        >>> autocontrast(torch.tensor([0.2, 0.4, 0.6]).view(1, 1, 1, 3))
        tensor([[[[0.0000, 0.5000, 1.0000]]]])
    """
    low = image.amin(dim=(-2, -1), keepdim=True)
    span = image.amax(dim=(-2, -1), keepdim=True) - low
    return torch.where(span > 0, (image - low) / span.clamp_min(torch.finfo(image.dtype).tiny), image)


def _random_gamma(x: Tensor, generator: torch.Generator | None) -> Tensor:
    """imgaug ``GammaContrast((0.5, 2.0), per_channel=True)``."""
    return gamma_contrast(x, uniform_on(x.shape[:2], 0.5, 2.0, generator, x.device))


def _random_brightness(x: Tensor, generator: torch.Generator | None) -> Tensor:
    """imgaug ``MultiplyAndAddToBrightness(mul=(0.8, 1.2), add=(-30, 30))`` on 0..255."""
    multiplier = uniform_on(x.shape[0], 0.8, 1.2, generator, x.device)
    return adjust_luma(x, multiplier, uniform_on(x.shape[0], -30 / 255, 30 / 255, generator, x.device))


def _random_sharpness(x: Tensor, generator: torch.Generator | None) -> Tensor:
    """imgaug ``pillike.EnhanceSharpness()``: factor in (0, 2), 1 keeps the image."""
    return enhance_sharpness(x, uniform_on(x.shape[0], 0.0, 2.0, generator, x.device))


def _random_hue_saturation(x: Tensor, generator: torch.Generator | None) -> Tensor:
    """imgaug ``AddToHueAndSaturation((-50, 50), per_channel=True)``: hue -50..50 of 255 is 360 degrees."""
    n = x.shape[0]
    hue = uniform_on(n, -50 / 255 * 360, 50 / 255 * 360, generator, x.device)
    return shift_hue_saturation(x, hue, uniform_on(n, -50 / 255, 50 / 255, generator, x.device))


def _random_solarize(x: Tensor, generator: torch.Generator | None) -> Tensor:
    """imgaug ``Solarize(0.5, threshold=(32, 128))``: half the samples invert the values above the threshold."""
    applied = rand_on(x.shape[0], generator, x.device) < 0.5
    threshold = uniform_on(x.shape[0], 32 / 255, 128 / 255, generator, x.device)
    return solarize(x, torch.where(applied, threshold, torch.inf))  # an infinite threshold keeps the sample


def _random_posterize(x: Tensor, generator: torch.Generator | None) -> Tensor:
    """imgaug ``pillike.Posterize()``: keep 1..8 bits."""
    return posterize_bits(x, randint_on(1, 9, (x.shape[0],), generator, x.device))


def _random_rotate(x: Tensor, generator: torch.Generator | None) -> Tensor:
    """imgaug ``Affine(rotate=(-45, 45))`` with zero fill."""
    return rotate(x, uniform_on(x.shape[0], -45.0, 45.0, generator, x.device), padding_mode="zeros")


TextureOp = Callable[[Tensor, torch.Generator | None], Tensor]

#: The original DRÆM texture ops by name, each drawing its own per-sample parameters.
RANDOM_TEXTURE_OPS: dict[str, TextureOp] = {
    "gamma": _random_gamma,
    "brightness": _random_brightness,
    "sharpness": _random_sharpness,
    "hue_saturation": _random_hue_saturation,
    "solarize": _random_solarize,
    "posterize": _random_posterize,
    "invert": lambda x, generator: invert(x),
    "autocontrast": lambda x, generator: autocontrast(x),
    "equalize": lambda x, generator: equalize(x),
    "rotate": _random_rotate,
}
#: All 10 op names (the original code).
TEXTURE_OPS: tuple[str, ...] = tuple(RANDOM_TEXTURE_OPS)
#: The 7 ops named in the paper's text.
PAPER_OPS: tuple[str, ...] = (
    "posterize", "sharpness", "solarize", "equalize", "brightness", "hue_saturation", "autocontrast",
)


def apply_random_texture_ops(
    textures: Tensor,
    num_ops: int,
    ops: Sequence[str] = TEXTURE_OPS,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Apply ``num_ops`` ops, drawn per sample without replacement from ``ops``, in random order.

    Round ``r`` applies each op to exactly the samples whose ``r``-th draw it is (``index_select`` /
    ``index_copy_``), so no op runs on samples that did not draw it and there is no loop over samples.

    Args:
        textures: ``(B, 3, H, W)`` float in ``[0, 1]``.
        num_ops: Ops per sample, between 1 and ``len(ops)``.
        ops: Names from :data:`TEXTURE_OPS`.
        generator: Source of randomness, on the textures' device or on the CPU (no device sync then).

    Returns:
        The augmented textures, same shape, in ``[0, 1]``.

    Example:
        >>> x = torch.rand(4, 3, 16, 16)
        >>> apply_random_texture_ops(x, 1, ["invert"]).add(x).allclose(torch.ones_like(x))
        True
    """
    functions = [RANDOM_TEXTURE_OPS[name] for name in ops]
    draws = torch.rand(textures.shape[0], len(functions), generator=generator, device=_draw_device(generator, textures.device))
    order = draws.argsort(dim=1)[:, :num_ops].cpu()  # with a CUDA generator: one host sync, not one per (round, op)
    out = textures.clone()
    for round_ in range(num_ops):
        for k, function in enumerate(functions):
            index = (order[:, round_] == k).nonzero().squeeze(1)
            if index.numel():
                index = index.to(textures.device, non_blocking=True)
                out.index_copy_(0, index, function(out.index_select(0, index), generator))
    return out


# --------------------------------------------------------------------------------------------------
# Augmenter
# --------------------------------------------------------------------------------------------------
class AugmentedBatch(NamedTuple):
    """Output of :class:`PerlinAnomalyAugmenter`.

    Attributes:
        image: ``(B, 3, H, W)`` images with synthetic anomalies (input dtype and device).
        mask: ``(B, 1, H, W)`` anomaly masks in ``{0, 1}``.
        label: ``(B,)`` 1 where the mask is non-empty, else 0.
        clean: ``(B, 3, H, W)`` the anomaly-free images (after the optional normal-image rotation),
            i.e. the reconstruction target.
    """

    image: Tensor
    mask: Tensor
    label: Tensor
    clean: Tensor


_PRESETS: dict[str, dict[str, Any]] = {
    # The released code: defaults plus a 30 % rotation of the clean image by (-90, 90).
    "original": {"normal_rotation_probability": 0.3},
    # The paper's text. The paper's beta in [0.1, 1] weights the texture, i.e. the image weight is in [0, 0.9].
    # It draws the threshold "uniformly" without a range: (0.3, 0.7) is our choice.
    "paper": {
        "beta_range": (0.0, 0.9),
        "threshold": (0.3, 0.7),
        "normal_rotation_probability": 0.3,
        "normal_rotation_range": (-45.0, 45.0),
        "ops": PAPER_OPS,
    },
}


def _check_probability(value: float, name: str) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}.")


def _check_interval(
    value: Sequence[float], name: str, low: float | None = None, high: float | None = None
) -> tuple[float, float]:
    """Validate ``(lo, hi)`` with ``lo <= hi``, optionally within ``[low, high]``."""
    outside = (low is not None and value[0] < low) or (high is not None and value[1] > high)
    if len(value) != 2 or not value[0] <= value[1] or outside:  # `not <=` also refuses NaN
        bounds = f" within [{low}, {high}]" if low is not None else ""
        raise ValueError(f"{name} must be (lo, hi) with lo <= hi{bounds}, got {tuple(value)!r}.")
    return float(value[0]), float(value[1])


class PerlinAnomalyAugmenter(nn.Module):
    """Synthesise DRÆM anomalies on a batch of normal images, on the batch's device.

    Steps, all batched: (1) with ``normal_rotation_probability`` rotate the clean image by
    ``U(normal_rotation_range)`` degrees; (2) pick each sample as anomalous with ``anomaly_probability``;
    (3) for those, draw a Perlin mask (:func:`~draem_plugin.perlin.perlin_mask`), a texture from the
    :class:`TextureBank` and ``num_ops`` ops from ``ops``; (4) inside the mask blend
    ``beta * image + (1 - beta) * texture`` with ``beta ~ U(beta_range)``; pixels outside it are untouched.
    A sample whose mask came out empty counts as normal (label 0), as in the original.

    Randomness comes from one generator per device, created on first use and seeded from ``seed``
    (or, if ``None``, once from torch's global RNG, so ``lightning.seed_everything`` fixes it).

    Args:
        anomaly_source_path: Folder (or file) of texture images, e.g. the DTD ``images`` folder;
            ``None`` uses procedural Perlin textures and logs a warning.
        source_size: Size the textures are stored at.
        anomaly_probability: Fraction of samples that get an anomaly.
        beta_range: Range of the image weight inside the mask (texture opacity is ``1 - beta``).
        threshold: Perlin threshold in ``(0, 1)``, or a ``(lo, hi)`` range drawn per sample.
        scale_exponent_range: Lattice cells ``2**randint(lo, hi)`` per axis, ``hi`` exclusive.
        rotation_range: Rotation of the Perlin noise in degrees.
        num_ops: Texture ops per sample, drawn without replacement from ``ops``.
        ops: Op names (default: all of :data:`TEXTURE_OPS`).
        normal_rotation_probability: Probability of rotating the clean image first (original code: 0.3).
        normal_rotation_range: Rotation range of the clean image in degrees.
        max_source_images: Load a random subset of this many texture files.
        seed: Seed of the random stream (and of the texture subset).

    Example:
        >>> augmenter = PerlinAnomalyAugmenter.from_preset("original", seed=0)
        >>> batch = augmenter(torch.rand(8, 3, 32, 32))
        >>> bool(((batch.image == batch.clean) | (batch.mask == 1)).all())
        True
    """

    def __init__(
        self,
        anomaly_source_path: str | Path | None = None,
        source_size: int | tuple[int, int] = 256,
        anomaly_probability: float = 0.5,
        beta_range: tuple[float, float] = (0.0, 0.8),
        threshold: float | tuple[float, float] = 0.5,
        scale_exponent_range: tuple[int, int] = (0, 6),
        rotation_range: tuple[float, float] = (-90.0, 90.0),
        num_ops: int = 3,
        ops: Sequence[str] | None = None,
        normal_rotation_probability: float = 0.0,
        normal_rotation_range: tuple[float, float] = (-90.0, 90.0),
        max_source_images: int | None = None,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        _check_probability(anomaly_probability, "anomaly_probability")
        _check_probability(normal_rotation_probability, "normal_rotation_probability")
        self.anomaly_probability = float(anomaly_probability)
        self.normal_rotation_probability = float(normal_rotation_probability)
        self.beta_range = _check_interval(beta_range, "beta_range", 0.0, 1.0)
        self.normal_rotation_range = _check_interval(normal_rotation_range, "normal_rotation_range")
        _check_mask_parameters(scale_exponent_range, rotation_range, threshold)
        self.rotation_range = (float(rotation_range[0]), float(rotation_range[1]))
        self.threshold = tuple(map(float, threshold)) if isinstance(threshold, (tuple, list)) else float(threshold)
        self.scale_exponent_range = (scale_exponent_range[0], scale_exponent_range[1])
        self.ops = TEXTURE_OPS if ops is None else tuple(ops)
        unknown = [name for name in self.ops if name not in RANDOM_TEXTURE_OPS]
        if unknown or len(set(self.ops)) != len(self.ops):
            raise ValueError(f"ops must be distinct names from {list(TEXTURE_OPS)}, got {list(self.ops)!r}.")
        if not (isinstance(num_ops, int) and 1 <= num_ops <= len(self.ops)):
            raise ValueError(f"num_ops must be an int between 1 and len(ops) = {len(self.ops)}, got {num_ops!r}.")
        self.num_ops = num_ops
        if seed is not None and not isinstance(seed, int):
            raise ValueError(f"seed must be an int or None, got {seed!r}.")
        self.bank = TextureBank(anomaly_source_path, source_size, max_images=max_source_images, seed=seed or 0)
        self._seed = seed
        self._host_generator: torch.Generator | None = None
        self._pending_state: Tensor | None = None

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> PerlinAnomalyAugmenter:  # noqa: ANN401
        """Build the ``"original"`` (released code) or ``"paper"`` (paper's text) setting, with overrides.

        ``"paper"``: image weight in ``[0, 0.9]`` (the paper's texture weight in ``[0.1, 1]``), threshold
        drawn from ``(0.3, 0.7)`` (our choice, the paper gives no range), clean-image rotation ``(-45, 45)``
        with probability 0.3, and the paper's 7 ops (:data:`PAPER_OPS`).

        Example:
            >>> PerlinAnomalyAugmenter.from_preset("paper", seed=0).beta_range
            (0.0, 0.9)
        """
        if name not in _PRESETS:
            raise ValueError(f"unknown augmentation preset {name!r}; choose one of {sorted(_PRESETS)}.")
        return cls(**{**_PRESETS[name], **overrides})

    # ---------------------------------------------------------------- random stream
    def _generator(self) -> torch.Generator:
        """The stream's generator, created (and seeded or restored) on first use.

        It lives on the CPU whatever the batch's device: the augmenter draws only a few numbers per sample (choices,
        angles, lattice gradients, op parameters), and drawing them on the host means a CUDA step never waits for
        the device to tell which samples get an anomaly. The stream is the same on every device type.
        """
        if self._host_generator is None:
            generator = torch.Generator()
            if self._pending_state is not None:
                self._restore(generator, self._pending_state)
                self._pending_state = None
            else:
                if self._seed is None:
                    self._seed = int(torch.randint(2**62, (1,)).item())
                generator.manual_seed(self._seed)
            self._host_generator = generator
        return self._host_generator

    @staticmethod
    def _restore(generator: torch.Generator, state: Tensor) -> None:
        """Load ``state``; a state of another generator type (e.g. a CUDA one) seeds the stream from its hash instead."""
        try:
            generator.set_state(state)
        except RuntimeError:
            logger.warning(
                "The saved augmenter RNG state (%d bytes) is not the state of a CPU generator; the random stream "
                "continues from a seed derived from it.",
                state.numel(),
            )
            generator.manual_seed(int.from_bytes(hashlib.sha256(state.numpy().tobytes()).digest()[:7], "little"))

    def reseed(self, seed: int) -> None:
        """Restart the random stream from ``seed`` on every device (e.g. ``base + global_rank`` under DDP)."""
        if not isinstance(seed, int):
            raise ValueError(f"seed must be an int, got {seed!r}.")
        self._seed = seed
        self._host_generator = None
        self._pending_state = None

    def get_rng_state(self) -> Tensor:
        """State (CPU uint8 tensor) of the generator in use, to save with a checkpoint."""
        if self._pending_state is not None:
            return self._pending_state.clone()
        return self._generator().get_state()

    def set_rng_state(self, state: Tensor) -> None:
        """Continue the random stream from ``state`` (from :meth:`get_rng_state`) at the next draw."""
        if not isinstance(state, Tensor) or state.dtype != torch.uint8 or state.ndim != 1:
            raise ValueError(f"state must be the 1-D uint8 tensor returned by get_rng_state(), got {state!r:.80}.")
        self._pending_state = state.detach().cpu().clone()
        self._host_generator = None

    # ---------------------------------------------------------------- forward
    @torch.no_grad()
    def forward(self, image: Tensor) -> AugmentedBatch:
        """Add synthetic anomalies to a batch of normal images ``(B, 3, H, W)`` in ``[0, 1]``.

        When no sample is changed, ``image`` and ``clean`` of the result are the input tensor itself. Autocast is
        off inside (``bf16-mixed`` / ``16-mixed`` training): the noise, rotations and blend run in float32.
        """
        with torch.autocast(image.device.type, enabled=False):
            return self._synthesise(image)

    def _synthesise(self, image: Tensor) -> AugmentedBatch:
        """:meth:`forward` without the autocast guard."""
        if image.ndim != 4 or image.shape[1] != 3 or not image.is_floating_point():
            raise ValueError(
                f"image must be a float (B, 3, H, W) batch in [0, 1], got dtype {image.dtype} and shape "
                f"{tuple(image.shape)}; convert grey images with image.expand(-1, 3, -1, -1)."
            )
        batch, _, height, width = image.shape
        device = image.device
        generator = self._generator()
        compute = torch.float32 if image.dtype in (torch.float16, torch.bfloat16) else image.dtype
        draws = torch.rand(batch, 2, generator=generator).cpu()  # drawn on the host: no wait for the device

        clean = image
        rotated = (draws[:, 0] < self.normal_rotation_probability).nonzero().squeeze(1).to(device, non_blocking=True)
        if rotated.numel():
            angle = uniform_on(rotated.numel(), *self.normal_rotation_range, generator, device)
            turned = rotate(image.index_select(0, rotated).to(compute), angle, padding_mode="zeros")
            clean = image.index_copy(0, rotated, turned.to(image.dtype))

        augmented = clean
        mask = image.new_zeros(batch, 1, height, width)
        anomalous = (draws[:, 1] < self.anomaly_probability).nonzero().squeeze(1).to(device, non_blocking=True)
        count = anomalous.numel()
        if count:
            masks = perlin_mask(
                count, height, width,
                scale_exponent_range=self.scale_exponent_range,
                rotation_range=self.rotation_range,
                threshold=self.threshold,
                generator=generator,
                device=device,
            )
            textures = self.bank.sample(count, height, width, generator=generator, device=device)
            textures = apply_random_texture_ops(textures, self.num_ops, self.ops, generator)
            beta = uniform_on((count, 1, 1, 1), *self.beta_range, generator, device).to(compute)
            normal = clean.index_select(0, anomalous).to(compute)
            # beta * image + (1 - beta) * texture inside the mask; a zero weight leaves the pixel exactly as it was
            blended = torch.lerp(normal, textures.to(compute), (1.0 - beta) * masks.to(compute))
            augmented = clean.index_copy(0, anomalous, blended.to(image.dtype))
            mask.index_copy_(0, anomalous, masks.to(mask.dtype))
        return AugmentedBatch(augmented, mask, mask.flatten(1).amax(dim=1), clean)

    def extra_repr(self) -> str:
        """Source, bank size and the synthesis settings."""
        return (
            f"source={self.bank.source or 'procedural'}, bank_size={len(self.bank)}, "
            f"anomaly_probability={self.anomaly_probability}, beta_range={self.beta_range}, "
            f"threshold={self.threshold}, num_ops={self.num_ops}, ops={list(self.ops)}, "
            f"normal_rotation_probability={self.normal_rotation_probability}"
        )
