"""SurfaceDemo's images: crops of scikit-image's texture photographs, and the four defects drawn on test images.

The photographs ``skimage.data.brick()``, ``grass()`` and ``gravel()`` (512x512 grayscale, CC0) ship with
scikit-image. Normal images are ``image_size`` RGB crops covering ``SOURCE_CROP`` x ``SOURCE_CROP`` photo pixels,
with a random position, 90° rotation, flip, mild brightness/contrast jitter and a mild colour tint. Training crops lie
entirely in the left ``TRAIN_FRACTION`` of the photo's columns and test crops entirely in the rest (see
:func:`photo_columns`), so no test pixel was seen in training. Test images carry one of four defects unlike DRÆM's
training synthesis (Perlin-shaped patches of a foreign texture): ``scratch`` (thin bright or dark lines), ``crack``
(dark jagged branching line), ``hole`` (dark pit with a shaded rim) and ``stain`` (a semi-transparent blob of colour).
A defect's mask (0/255) covers the pixels that the defect changed by at least ``MASK_THRESHOLD`` grey levels, plus
pinholes they enclose; no pixel outside the mask is changed. Every defect covers at least ``MIN_DEFECT_AREA`` of the
image, and its mean change is at least ``MIN_DEFECT_CONTRAST`` times the texture's local standard deviation.

Example:
    >>> sample = render_sample("brick", "test", "crack", index=0, image_size=64, seed=0)
    >>> sample.image.shape, sample.mask.shape, sample.mask.max()
    ((64, 64, 3), (64, 64), np.uint8(255))
"""

from __future__ import annotations

import math
import zlib
from functools import cache
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage
from skimage import data as skimage_data

__all__ = ["CATEGORIES", "DEFECT_TYPES", "Crop", "Sample", "add_defect", "photo_columns", "render_sample"]

#: Texture categories, each named after the scikit-image photograph it is cut from.
CATEGORIES = ("brick", "grass", "gravel")
#: Defect types drawn on test images; each gets its own ``test/<defect>`` folder.
DEFECT_TYPES = ("scratch", "crack", "hole", "stain")
#: Side of the square photo window behind every image (resampled to ``image_size``); fits the test region.
SOURCE_CROP = 192
#: Training crops lie in photo columns ``[0, TRAIN_FRACTION * W)``, test crops in ``[TRAIN_FRACTION * W, W)``.
TRAIN_FRACTION = 0.6
#: Smallest per-pixel change (grey levels, max over RGB) that counts as changed, hence as masked.
MASK_THRESHOLD = 10
#: Each defect covers at least this fraction of the image.
MIN_DEFECT_AREA = 0.003
#: Mean change inside the mask must be at least this many times the texture's local standard deviation there.
MIN_DEFECT_CONTRAST = 1.5
_MAX_DEFECT_TRIES = 50
_SUPERSAMPLING = 4
#: Mean colour tint per category (RGB gains on the grayscale photo); each image varies it slightly.
_TINTS = {"brick": (1.12, 0.93, 0.80), "grass": (0.88, 1.08, 0.78), "gravel": (1.03, 1.00, 0.94)}
#: Stain colours (RGB in [0, 1]): rust, oil, ink, paint, moss.
_STAIN_COLOURS = ((0.62, 0.30, 0.08), (0.10, 0.08, 0.06), (0.12, 0.22, 0.70), (0.92, 0.80, 0.12), (0.30, 0.55, 0.10))


class Crop(NamedTuple):
    """Where an image was cut from its photograph: window ``[top:top+size, left:left+size]``, then transformed."""

    top: int
    left: int
    size: int
    rot90: int
    flip: bool


class Sample(NamedTuple):
    """One rendered image: ``clean`` is the defect-free rendering; ``mask`` is ``None`` for normal images."""

    clean: np.ndarray
    image: np.ndarray
    mask: np.ndarray | None
    crop: Crop


def photo_columns(split: str, width: int = 512) -> tuple[int, int]:
    """Photo columns ``[start, stop)`` that the crops of ``split`` (``"train"`` or ``"test"``) lie in; rows are free.

    The photographs are split by columns, not rows, because the brick photo is taken in perspective: its bricks grow
    from top to bottom, so a split by rows would give test images a brick size never seen in training.

    Example:
        >>> photo_columns("train"), photo_columns("test")
        ((0, 307), (307, 512))
    """
    boundary = int(TRAIN_FRACTION * width)
    return (0, boundary) if split == "train" else (boundary, width)


@cache
def _photo(category: str) -> np.ndarray:
    """The category's grayscale photograph as float32 in ``[0, 1]`` (read-only, cached)."""
    photo = getattr(skimage_data, category)().astype(np.float32) / 255.0
    photo.setflags(write=False)
    return photo


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)


def _render_normal(category: str, split: str, image_size: int, rng: np.random.Generator) -> tuple[np.ndarray, Crop]:
    """A defect-free RGB crop (float32 in ``[0, 1]``) from the ``split`` region of the photograph."""
    photo = _photo(category)
    start, stop = photo_columns(split, photo.shape[1])
    top = int(rng.integers(0, photo.shape[0] - SOURCE_CROP + 1))
    left = int(rng.integers(start, stop - SOURCE_CROP + 1))
    crop = Crop(top, left, SOURCE_CROP, int(rng.integers(4)), bool(rng.random() < 0.5))
    window = np.rot90(photo[top : top + SOURCE_CROP, left : left + SOURCE_CROP], crop.rot90)
    if crop.flip:
        window = window[:, ::-1]
    resized = Image.fromarray(np.ascontiguousarray(window)).resize(
        (image_size, image_size),
        Image.Resampling.LANCZOS,
    )
    gray = np.asarray(resized, dtype=np.float32)
    mean = float(gray.mean())
    gray = (gray - mean) * rng.uniform(0.85, 1.15) + mean + rng.uniform(-0.05, 0.05)
    tint = np.asarray(_TINTS[category], dtype=np.float32) * (1.0 + rng.normal(0.0, 0.03, 3)).astype(np.float32)
    return np.clip(gray[..., None] * tint, 0.0, 1.0), crop


def _coverage(image_size: int, strokes: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Anti-aliased coverage in ``[0, 1]`` of polylines given as ``(points (N, 2) as x, y in px, widths (N,))``."""
    scale = _SUPERSAMPLING
    canvas = Image.new("L", (image_size * scale, image_size * scale), 0)
    draw = ImageDraw.Draw(canvas)
    for points, widths in strokes:
        xy = points * scale
        for (x0, y0), (x1, y1), width in zip(xy[:-1], xy[1:], widths[1:], strict=True):
            draw.line([(x0, y0), (x1, y1)], fill=255, width=max(1, round(width * scale)))
        for (x, y), width in zip(xy, widths, strict=True):  # round joints and caps
            radius = max(0.5, width * scale / 2)
            draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=255)
    small = canvas.resize((image_size, image_size), Image.Resampling.BOX)
    return np.asarray(small, dtype=np.float32) / 255.0


def _blend(clean: np.ndarray, colour: np.ndarray | float, alpha: np.ndarray) -> np.ndarray:
    return clean * (1.0 - alpha[..., None]) + np.asarray(colour, dtype=np.float32) * alpha[..., None]


def _scratch(clean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One to three near-parallel thin lines (1-3 px), straight or slightly curved, bright or dark."""
    size = clean.shape[0]
    centre = rng.uniform(0.3, 0.7, 2) * size
    angle = rng.uniform(0.0, math.pi)
    strokes = []
    for _ in range(int(rng.integers(1, 4))):
        theta = angle + rng.normal(0.0, 0.04)
        direction = np.array([math.cos(theta), math.sin(theta)])
        normal = np.array([-direction[1], direction[0]])
        length = rng.uniform(0.35, 0.8) * size
        middle = centre + normal * rng.uniform(-0.08, 0.08) * size + direction * rng.uniform(-0.1, 0.1) * size
        bend = rng.uniform(-0.06, 0.06) * length if rng.random() < 0.5 else 0.0
        t = np.linspace(-0.5, 0.5, 33)[:, None]
        points = middle + t * length * direction + (1.0 - 4.0 * t**2) * bend * normal
        strokes.append((points, np.full(len(points), rng.uniform(1.0, 3.0))))
    alpha = _coverage(size, strokes) * rng.uniform(0.8, 0.95)
    shade = rng.uniform(0.88, 1.0) if rng.random() < 0.5 else rng.uniform(0.0, 0.1)
    return _blend(clean, shade, alpha)


def _walk(start: np.ndarray, angle: float, length: float, step: float, rng: np.random.Generator) -> np.ndarray:
    """A jagged random-walk polyline that keeps a mean heading ``angle``."""
    points = [start]
    heading = angle
    for _ in range(max(2, round(length / step))):
        heading += 0.35 * (angle - heading) + rng.normal(0.0, 0.45)
        points.append(points[-1] + step * np.array([math.cos(heading), math.sin(heading)]))
    return np.asarray(points)


def _crack(clean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A dark jagged line, widest in the middle, with one to three thinner branches."""
    size = clean.shape[0]
    step = rng.uniform(0.025, 0.045) * size
    angle = rng.uniform(0.0, 2.0 * math.pi)
    start, half = rng.uniform(0.35, 0.65, 2) * size, rng.uniform(0.22, 0.38) * size
    main = np.concatenate([_walk(start, angle + math.pi, half, step, rng)[::-1], _walk(start, angle, half, step, rng)])
    width = max(1.2, rng.uniform(0.008, 0.014) * size)
    strokes = [(main, width * (0.35 + 0.65 * np.sin(np.linspace(0.0, math.pi, len(main)))))]
    for _ in range(int(rng.integers(1, 4))):
        fork = int(rng.integers(1, len(main) - 1))
        branch_angle = angle + rng.choice([-1.0, 1.0]) * rng.uniform(0.5, 1.1)
        branch = _walk(main[fork], branch_angle, rng.uniform(0.15, 0.35) * size, step, rng)
        strokes.append((branch, strokes[0][1][fork] * np.linspace(0.8, 0.3, len(branch))))
    alpha = _coverage(size, strokes) * rng.uniform(0.85, 0.95)
    return _blend(clean, rng.uniform(0.02, 0.08), alpha)


def _hole(clean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A dark elliptical pit, its inner wall lit on the far side, with a soft raised rim lit on the near side."""
    size = clean.shape[0]
    cy, cx = rng.uniform(0.25, 0.75, 2) * size
    semi_major = rng.uniform(0.05, 0.1) * size
    semi_minor = semi_major * rng.uniform(0.6, 1.0)
    tilt, light = rng.uniform(0.0, 2.0 * math.pi, 2)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    dx, dy = xx - cx, yy - cy
    u = dx * math.cos(tilt) + dy * math.sin(tilt)
    v = -dx * math.sin(tilt) + dy * math.cos(tilt)
    phase = np.arctan2(v, u)[..., None]
    wobble = 1.0 + (rng.uniform(0.0, 0.05, 3) * np.sin(np.arange(2, 5) * phase + rng.uniform(0.0, 6.3, 3))).sum(-1)
    radius = np.sqrt((u / semi_major) ** 2 + (v / semi_minor) ** 2) / wobble  # slightly irregular outline
    facing = (dx * math.cos(light) + dy * math.sin(light)) / (np.hypot(dx, dy) + 1e-6)  # +1 towards the light
    inside = np.clip((1.0 - radius) * semi_minor / 1.5, 0.0, 1.0)  # ~1.5 px soft edge
    wall = 0.04 + 0.14 * np.clip(-facing, 0.0, 1.0) * radius  # far inner wall catches the light
    pit = 0.25 * clean + 0.75 * wall[..., None]
    rim = 0.3 * np.exp(-(((radius - 1.15) / 0.12) ** 2)) * facing * (1.0 - inside)
    return _blend(clean, pit, inside) + rim[..., None]


def _stain(clean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A smooth, irregular, semi-transparent blob of a colour unlike the texture's; the texture shows through."""
    size = clean.shape[0]
    reach = rng.uniform(0.08, 0.15) * size
    centre = rng.uniform(0.3, 0.7, 2) * size
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    field = np.zeros((size, size), dtype=np.float32)
    for _ in range(int(rng.integers(3, 7))):
        cx, cy = centre + rng.normal(0.0, 0.5, 2) * reach
        sigma = rng.uniform(0.35, 0.7) * reach
        field += np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2.0 * sigma**2))
    shape = ndimage.gaussian_filter(np.clip((field - 0.5) / 0.3, 0.0, 1.0), sigma=0.12 * reach)
    mean_colour = clean.reshape(-1, 3).mean(axis=0)
    far = [c for c in _STAIN_COLOURS if np.abs(np.subtract(c, mean_colour)).max() > 0.3]
    colour = np.asarray(far[int(rng.integers(len(far)))], dtype=np.float32)
    texture = 0.6 + 0.8 * clean.mean(axis=2, keepdims=True)  # keep the texture visible under the stain
    return _blend(clean, colour * texture, shape * rng.uniform(0.55, 0.8))


_DEFECTS = {"scratch": _scratch, "crack": _crack, "hole": _hole, "stain": _stain}


def _local_std(gray: np.ndarray, sigma: float) -> np.ndarray:
    mean = ndimage.gaussian_filter(gray, sigma)
    return np.sqrt(np.clip(ndimage.gaussian_filter(gray**2, sigma) - mean**2, 0.0, None))


def _fill_pinholes(mask: np.ndarray) -> np.ndarray:
    """``mask`` with enclosed holes of at most ``mask.size / 2000`` pixels filled (e.g. dark pixels under a stain)."""
    holes, count = ndimage.label(ndimage.binary_fill_holes(mask) & ~mask)
    sizes = ndimage.sum_labels(np.ones_like(mask), holes, index=np.arange(1, count + 1))
    small = np.flatnonzero(sizes <= mask.size / 2000) + 1
    return mask | np.isin(holes, small)


def add_defect(clean: np.ndarray, defect: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``defect`` until it is large and contrasted enough; return the image and its exact mask (uint8)."""
    clean_u8 = _to_uint8(clean)
    local_std = _local_std(clean_u8.mean(axis=2, dtype=np.float32), sigma=clean.shape[0] / 64)
    for _ in range(_MAX_DEFECT_TRIES):
        image = _to_uint8(_DEFECTS[defect](clean, rng))
        change = np.abs(image.astype(np.int16) - clean_u8).max(axis=2)
        mask = _fill_pinholes(change >= MASK_THRESHOLD)
        if mask.mean() >= MIN_DEFECT_AREA and change[mask].mean() >= MIN_DEFECT_CONTRAST * local_std[mask].mean():
            return np.where(mask[..., None], image, clean_u8), mask.astype(np.uint8) * 255
    msg = f"Could not draw a visible {defect!r} in {_MAX_DEFECT_TRIES} tries; this is a bug, please report it."
    raise RuntimeError(msg)


def render_sample(category: str, split: str, label: str, index: int, image_size: int, seed: int) -> Sample:
    """Render image ``index`` of ``<split>/<label>``; its randomness depends only on these arguments and ``seed``."""
    stream = zlib.crc32(f"{category}/{split}/{label}".encode())
    rng = np.random.default_rng([seed, stream, index])
    clean, crop = _render_normal(category, split, image_size, rng)
    if label == "good":
        clean_u8 = _to_uint8(clean)
        return Sample(clean_u8, clean_u8, None, crop)
    image, mask = add_defect(clean, label, rng)
    return Sample(_to_uint8(clean), image, mask, crop)
