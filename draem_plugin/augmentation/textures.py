"""The anomaly-source textures: a bank of decoded images on the training device, or procedural noise.

Example:
    >>> bank = TextureBank(None, size=64)  # procedural textures; pass a folder, e.g. the DTD "images" folder
    >>> bank.sample(2, 32, 48).shape
    torch.Size([2, 3, 32, 48])
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from itertools import repeat
from pathlib import Path

import numpy as np
import torch
from kornia.geometry.transform import resize
from PIL import Image
from torch import Tensor, nn

from ..data.images import DECODE_ERRORS, IMAGE_EXTENSIONS, decode_image
from ..validation import as_size, listing
from .perlin import rand_perlin_2d
from .sampling import draw_device, rand_on, randint_on

__all__ = ["TextureBank", "procedural_textures"]

logger = logging.getLogger(__name__)

#: Textures smaller than this on a side are upscaled with a warning.
SMALL_SIDE = 32
_LISTED = 20


def _find_image_files(source: Path) -> list[Path]:
    """The image file ``source`` itself, or every image file under the folder ``source``, sorted."""
    accepted = ", ".join(IMAGE_EXTENSIONS)
    if not source.exists():
        msg = (
            f"anomaly source path {source} does not exist. Pass a folder of texture images (e.g. the DTD 'images' "
            "folder), a single image file, or None for procedural textures."
        )
        raise FileNotFoundError(msg)
    if source.is_file():
        if source.suffix.lower() not in IMAGE_EXTENSIONS:
            msg = f"anomaly source file {source} is not an image; accepted extensions: {accepted}."
            raise ValueError(msg)
        return [source]
    files = sorted(path for path in source.rglob("*") if path.suffix.lower() in IMAGE_EXTENSIONS and path.is_file())
    if not files:
        msg = (
            f"no image files under {source} (searched recursively for {accepted}, any case). Point "
            "anomaly_source_path at a folder of textures, e.g. /path/to/dtd/images."
        )
        raise FileNotFoundError(msg)
    return files


def _to_rgb(image: Image.Image) -> Image.Image:
    """Convert any PIL mode to 8-bit RGB; 16-bit grey levels are scaled (not clipped) to 8 bits."""
    if image.mode == "I" or image.mode.startswith("I;16"):
        levels = np.asarray(image, dtype=np.float32) / 257.0  # 65535 -> 255
        return Image.fromarray(np.clip(np.rint(levels), 0, 255).astype(np.uint8)).convert("RGB")
    return image.convert("RGB")  # grey -> 3 equal channels, alpha dropped, palette expanded


def _decode_resized(path: Path, size: tuple[int, int]) -> tuple[np.ndarray, tuple[int, int]] | None:
    """``path`` as an RGB uint8 array resized to ``size`` (not cropped), with its size on disk; ``None`` if corrupt."""
    height, width = size
    try:
        image = decode_image(path, draft=(width, height))
    except DECODE_ERRORS:
        return None
    resized = _to_rgb(image).resize((width, height), Image.Resampling.BILINEAR)
    return np.asarray(resized), image.info["original_size"]


def _load_images(files: list[Path], size: tuple[int, int], source: Path) -> Tensor:
    """Decode ``files`` (in parallel threads) into one ``(N, 3, H, W)`` uint8 tensor, skipping unreadable ones."""
    images = torch.empty(len(files), 3, *size, dtype=torch.uint8)
    target = images.numpy()  # numpy copies: torch's threaded copy is slow for many small images
    kept = 0
    skipped: list[Path] = []
    small: list[Path] = []
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        for path, decoded in zip(files, pool.map(_decode_resized, files, repeat(size)), strict=True):
            if decoded is None:
                skipped.append(path)
                continue
            array, original = decoded
            target[kept] = array.transpose(2, 0, 1)
            kept += 1
            if min(original) < SMALL_SIDE:
                small.append(path)
    if skipped:
        logger.warning(
            "Skipped %d unreadable or corrupt image file(s) under %s: %s",
            len(skipped),
            source,
            listing(skipped, _LISTED),
        )
    if not kept:
        msg = (
            f"none of the {len(files)} image file(s) under {source} could be decoded; check the files or point "
            "anomaly_source_path at another texture folder."
        )
        raise ValueError(msg)
    if small:
        logger.warning(
            "%d texture image(s) are smaller than %d px on a side and were upscaled to %dx%d: %s",
            len(small),
            SMALL_SIDE,
            *size,
            listing(small, _LISTED),
        )
    return images[:kept].clone() if kept < len(files) else images


def _fractal_noise(
    planes: int, height: int, width: int, generator: torch.Generator | None, device: torch.device
) -> Tensor:
    """``(planes, H, W)`` 3-octave Perlin noise, 2 to 8 base lattice cells per axis drawn per plane."""
    base = torch.randint(1, 4, (planes, 2), generator=generator, device=draw_device(generator, device)).exp2().long()
    return sum(
        0.5**octave * rand_perlin_2d(planes, height, width, base * 2**octave, generator=generator, device=device)
        for octave in range(3)
    )


def procedural_textures(
    batch: int,
    height: int,
    width: int,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """Draw textures from 3-octave Perlin noise, from one hue shaded in brightness to multicoloured.

    Each channel mixes a noise field of its own with one shared by the three channels, with a random per-sample
    weight: near 0 the channels vary together (one hue modulated in brightness, as in most natural textures and in
    stains), near 1 independently (multicoloured). Each channel is then stretched to ``[0, 1]`` and mapped onto a
    random per-sample, per-channel interval at least 0.3 wide. docs/benchmarks.md ("The demo preset") shows what
    the shared field changes.

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
    device = torch.device(device)
    own = _fractal_noise(batch * 3, height, width, generator, device).view(batch, 3, height, width)
    shared = _fractal_noise(batch, height, width, generator, device).view(batch, 1, height, width)
    weight = rand_on((batch, 1, 1, 1), generator, device)
    noise = (1.0 - weight) * shared + weight * own
    low = noise.amin(dim=(2, 3), keepdim=True)
    high = noise.amax(dim=(2, 3), keepdim=True)
    noise = (noise - low) / (high - low).clamp_min(1e-6)
    span, start = rand_on((2, batch, 3, 1, 1), generator, device).unbind(0)
    span = 0.3 + 0.7 * span  # at least 30 % contrast per channel
    return start * (1.0 - span) + span * noise


class TextureBank(nn.Module):
    """Anomaly-source textures held as one uint8 tensor that moves with the module, or drawn procedurally.

    With a path, every image file under it (recursively; ``.jpg .jpeg .png .bmp .tif .tiff .webp`` in any case), or
    the single image file it names, is decoded once, converted to RGB (grey to 3 equal channels, alpha dropped,
    16-bit grey scaled to 8 bits) and resized (not cropped) to ``size``, as the original DRÆM does with the DTD
    images at 256x256. The stack is a non-persistent buffer: ``.to(device)`` moves it and checkpoints do not contain
    it. Unreadable files are skipped with one warning.

    With ``source=None`` nothing is loaded: :meth:`sample` draws :func:`procedural_textures` on the fly (multi-octave
    Perlin noise, one hue to multicoloured), and one warning at construction says so. Real textures work better;
    give them with e.g. ``anomaly_source_path=/path/to/dtd/images``.

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
        self.size = as_size(size, "size")
        if max_images is not None and (not isinstance(max_images, int) or max_images < 1):
            msg = (
                "max_images (max_source_images of DraemPlugin) must be a positive int or None (all images), "
                f"got {max_images!r}."
            )
            raise ValueError(msg)
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
        textures = self.images.index_select(0, index).to(device).float().div_(255.0)
        if batch and textures.shape[-2:] != (height, width):
            textures = resize(textures, (height, width), interpolation="bilinear", antialias=True).clamp_(0.0, 1.0)
        return textures

    def extra_repr(self) -> str:
        """Source and number of stored images."""
        return f"source={self.source or 'procedural'}, images={len(self)}, size={self.size}"
