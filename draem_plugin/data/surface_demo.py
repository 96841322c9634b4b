"""SurfaceDemo: a small MVTec-style anomaly dataset built offline from scikit-image's texture photographs.

The photographs ``skimage.data.brick()``, ``grass()`` and ``gravel()`` (512x512 grayscale, CC0) ship with
scikit-image, so the data is built without any download, deterministically from ``seed``.

Normal images are ``image_size`` RGB crops covering ``SOURCE_CROP`` x ``SOURCE_CROP`` photo pixels, with a random
position, 90° rotation, flip, mild brightness/contrast jitter and a mild colour tint. Training crops lie entirely
in the left ``TRAIN_FRACTION`` of the photo's columns and test crops entirely in the rest (see :func:`photo_columns`),
so no test pixel was seen in training. Test images carry one of four defects unlike DRÆM's training synthesis (Perlin-shaped patches of a
foreign texture): ``scratch`` (thin bright or dark lines), ``crack`` (dark jagged branching line), ``hole`` (dark
pit with a shaded rim) and ``stain`` (a semi-transparent blob of colour). A defect's mask (0/255) covers the pixels
that the defect changed by at least ``MASK_THRESHOLD`` grey levels, plus pinholes they enclose; no pixel outside the
mask is changed. Every defect covers at least ``MIN_DEFECT_AREA`` of the image, and its mean change is at least
``MIN_DEFECT_CONTRAST`` times the texture's local standard deviation.

Layout, the same as MVTec AD's so that anomalib's ``MVTecAD`` and ``Folder`` read it::

    <root>/<category>/train/good/000.png
    <root>/<category>/test/good/000.png
    <root>/<category>/test/<defect>/000.png
    <root>/<category>/ground_truth/<defect>/000_mask.png
    <root>/<category>/surface_demo.json      (build parameters, format version, crop of every image)

Example:
    >>> from draem_plugin.data import SurfaceDemo
    >>> datamodule = SurfaceDemo(category="grass", image_size=128)
    >>> datamodule.prepare_data()  # builds ./datasets/surface_demo/grass once, then reuses it
    >>> datamodule.setup()
    >>> next(iter(datamodule.train_dataloader())).image.shape
    torch.Size([32, 3, 128, 128])
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import shutil
import tempfile
import zlib
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
from anomalib.data import MVTecAD
from anomalib.data.utils import TestSplitMode, ValSplitMode
from anomalib.utils.path import resolve_dataset_root
from PIL import Image, ImageDraw
from scipy import ndimage
from skimage import data as skimage_data

if TYPE_CHECKING:
    from torchvision.transforms.v2 import Transform

__all__ = ["CATEGORIES", "DEFECT_TYPES", "SurfaceDemo", "build_surface_demo", "photo_columns"]

logger = logging.getLogger(__name__)

#: Texture categories, each named after the scikit-image photograph it is cut from.
CATEGORIES = ("brick", "grass", "gravel")
#: Defect types drawn on test images; each gets its own ``test/<defect>`` folder.
DEFECT_TYPES = ("scratch", "crack", "hole", "stain")
#: Bump whenever the rendering changes, so that cached datasets are rebuilt.
FORMAT_VERSION = 1
MANIFEST_NAME = "surface_demo.json"
MIN_IMAGE_SIZE = 32
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
_MAX_MOVE_TRIES = 5
_SUPERSAMPLING = 4
#: Mean colour tint per category (RGB gains on the grayscale photo); each image varies it slightly.
_TINTS = {"brick": (1.12, 0.93, 0.80), "grass": (0.88, 1.08, 0.78), "gravel": (1.03, 1.00, 0.94)}
#: Stain colours (RGB in [0, 1]): rust, oil, ink, paint, moss.
_STAIN_COLOURS = ((0.62, 0.30, 0.08), (0.10, 0.08, 0.06), (0.12, 0.22, 0.70), (0.92, 0.80, 0.12), (0.30, 0.55, 0.10))


class _Crop(NamedTuple):
    """Where an image was cut from its photograph: window ``[top:top+size, left:left+size]``, then transformed."""

    top: int
    left: int
    size: int
    rot90: int
    flip: bool


class _Sample(NamedTuple):
    """One rendered image: ``clean`` is the defect-free rendering; ``mask`` is ``None`` for normal images."""

    clean: np.ndarray
    image: np.ndarray
    mask: np.ndarray | None
    crop: _Crop


def _check_params(
    category: str,
    image_size: int,
    num_train: int,
    num_test_good: int,
    num_test_defect: int,
    seed: int,
) -> None:
    if category not in CATEGORIES:
        msg = f"Unknown SurfaceDemo category {category!r}; choose one of {', '.join(CATEGORIES)}."
        raise ValueError(msg)
    if image_size < MIN_IMAGE_SIZE:
        msg = f"SurfaceDemo image_size must be at least {MIN_IMAGE_SIZE} so that defects fit, got {image_size}."
        raise ValueError(msg)
    counts = {"num_train": num_train, "num_test_good": num_test_good, "num_test_defect": num_test_defect}
    for name, value in counts.items():
        if value < 1:
            msg = f"SurfaceDemo {name} must be at least 1, got {value}."
            raise ValueError(msg)
    if seed < 0:
        msg = f"SurfaceDemo seed must be a non-negative integer, got {seed}."
        raise ValueError(msg)


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


def _render_normal(category: str, split: str, image_size: int, rng: np.random.Generator) -> tuple[np.ndarray, _Crop]:
    """A defect-free RGB crop (float32 in ``[0, 1]``) from the ``split`` region of the photograph."""
    photo = _photo(category)
    start, stop = photo_columns(split, photo.shape[1])
    top = int(rng.integers(0, photo.shape[0] - SOURCE_CROP + 1))
    left = int(rng.integers(start, stop - SOURCE_CROP + 1))
    crop = _Crop(top, left, SOURCE_CROP, int(rng.integers(4)), bool(rng.random() < 0.5))
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


def _add_defect(clean: np.ndarray, defect: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
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


def _render_sample(category: str, split: str, label: str, index: int, image_size: int, seed: int) -> _Sample:
    """Render image ``index`` of ``<split>/<label>``; its randomness depends only on these arguments and ``seed``."""
    stream = zlib.crc32(f"{category}/{split}/{label}".encode())
    rng = np.random.default_rng([seed, stream, index])
    clean, crop = _render_normal(category, split, image_size, rng)
    if label == "good":
        clean_u8 = _to_uint8(clean)
        return _Sample(clean_u8, clean_u8, None, crop)
    image, mask = _add_defect(clean, label, rng)
    return _Sample(_to_uint8(clean), image, mask, crop)


def _manifest_params(
    category: str,
    image_size: int,
    num_train: int,
    num_test_good: int,
    num_test_defect: int,
    seed: int,
) -> dict[str, Any]:
    return {
        "format_version": FORMAT_VERSION,
        "category": category,
        "image_size": image_size,
        "num_train": num_train,
        "num_test_good": num_test_good,
        "num_test_defect": num_test_defect,
        "seed": seed,
    }


def _stale_reason(folder: Path, params: dict[str, Any]) -> str | None:
    """Why ``folder`` cannot be reused for ``params``, or ``None`` if it can."""
    try:
        manifest = json.loads((folder / MANIFEST_NAME).read_text())
    except (OSError, ValueError):
        return "its manifest is missing or unreadable"
    built = manifest.get("params", {})
    changed = [f"{key} {built.get(key)} -> {value}" for key, value in params.items() if built.get(key) != value]
    if changed:
        return "its parameters changed: " + ", ".join(changed)
    missing = [name for sample in manifest["samples"] for name in (sample["image"], sample["mask"]) if name]
    missing = [name for name in missing if not (folder / name).is_file()]
    return f"{len(missing)} files are missing (e.g. {missing[0]})" if missing else None


def _write_png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, format="PNG", compress_level=1)  # textures barely compress; favour speed


def _build_into(folder: Path, params: dict[str, Any]) -> None:
    """Render all images of ``params`` into the empty directory ``folder`` and write the manifest last."""
    counts = {"train": params["num_train"], "good": params["num_test_good"], "defect": params["num_test_defect"]}
    jobs = [("train", "good", counts["train"]), ("test", "good", counts["good"])]
    jobs += [("test", defect, counts["defect"]) for defect in DEFECT_TYPES]
    samples = []
    for split, label, count in jobs:
        digits = max(3, len(str(count - 1)))
        for index in range(count):
            name = f"{index:0{digits}d}"
            sample = _render_sample(params["category"], split, label, index, params["image_size"], params["seed"])
            image_name = f"{split}/{label}/{name}.png"
            _write_png(folder / image_name, sample.image)
            mask_name = None
            if sample.mask is not None:
                mask_name = f"ground_truth/{label}/{name}_mask.png"
                _write_png(folder / mask_name, sample.mask)
            samples.append({"image": image_name, "mask": mask_name, "crop": sample.crop._asdict()})
    manifest = {
        "params": params,
        "source": f"skimage.data.{params['category']}() (CC0)",
        "photo_columns": {"train": photo_columns("train"), "test": photo_columns("test")},
        "samples": samples,
    }
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest, indent=1) + "\n")


def build_surface_demo(
    root: Path | str,
    category: str = "brick",
    image_size: int = 256,
    num_train: int = 64,
    num_test_good: int = 16,
    num_test_defect: int = 8,
    seed: int = 0,
) -> Path:
    """Build (or reuse) ``<root>/<category>`` in MVTec AD layout and return that folder.

    The folder is reused when its manifest lists the same parameters and all files exist, and rebuilt otherwise.
    The build goes into a temporary sibling directory that is renamed into place, so concurrent builds are safe.

    Args:
        root: Directory that holds one folder per category.
        category: One of ``CATEGORIES``.
        image_size: Side of the square images in pixels, at least ``MIN_IMAGE_SIZE`` (32).
        num_train: Number of normal training images.
        num_test_good: Number of normal test images.
        num_test_defect: Number of test images for each of the ``DEFECT_TYPES``.
        seed: Seed of all randomness; the same arguments give byte-identical files.

    Example:
        >>> from anomalib.data import Folder
        >>> folder = build_surface_demo("./datasets/surface_demo", "gravel", image_size=128)
        >>> datamodule = Folder(
        ...     name="gravel",
        ...     root=folder,
        ...     normal_dir="train/good",
        ...     abnormal_dir="test/crack",
        ...     normal_test_dir="test/good",
        ...     mask_dir="ground_truth/crack",
        ... )
    """
    _check_params(category, image_size, num_train, num_test_good, num_test_defect, seed)
    params = _manifest_params(category, image_size, num_train, num_test_good, num_test_defect, seed)
    root = Path(root)
    target = root / category
    reason = _stale_reason(target, params)
    if reason is None:
        logger.info("Found SurfaceDemo %r in %s.", category, target)
        return target
    if target.exists() and not (target / MANIFEST_NAME).is_file():
        msg = (
            f"{target} exists but was not built by SurfaceDemo (no {MANIFEST_NAME}); remove it or choose another root."
        )
        raise FileExistsError(msg)
    if target.exists():
        logger.info("Rebuilding SurfaceDemo %r in %s because %s.", category, target, reason)
    else:
        logger.info("Building SurfaceDemo %r in %s.", category, target)
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{category}.building-", dir=root))
    try:
        _build_into(staging, params)
        _move_into_place(staging, target, params)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _move_into_place(staging: Path, target: Path, params: dict[str, Any]) -> None:
    """Rename ``staging`` to ``target`` atomically, unless a concurrent build has put a usable ``target`` there."""
    for _ in range(_MAX_MOVE_TRIES):
        if _stale_reason(target, params) is None:
            logger.info("Another process built SurfaceDemo %r in %s meanwhile; keeping it.", params["category"], target)
            return
        if (target / MANIFEST_NAME).is_file():  # a stale build of ours: move it aside atomically, then delete it
            retired = Path(tempfile.mkdtemp(prefix=f".{target.name}.retired-", dir=target.parent))
            with contextlib.suppress(FileNotFoundError):  # another process may have moved it first
                target.rename(retired / target.name)
            shutil.rmtree(retired, ignore_errors=True)
        try:
            staging.rename(target)
        except OSError:  # another process renamed its build into place first; check it on the next try
            continue
        return
    msg = f"Could not move the SurfaceDemo build into {target}; check that the directory is writable and not in use."
    raise RuntimeError(msg)


class SurfaceDemo(MVTecAD):
    """MVTec AD datamodule over SurfaceDemo data, built offline by :func:`build_surface_demo` in ``prepare_data``.

    Takes every argument of anomalib's ``MVTecAD`` (``seed`` seeds the val/test splits) plus the build
    parameters below.

    Args:
        root: Directory holding one folder per category; ``None`` uses anomalib's dataset cache directory.
        category: Texture, one of ``"brick"``, ``"grass"``, ``"gravel"``.
        train_batch_size: Training batch size.
        eval_batch_size: Validation and test batch size.
        num_workers: Number of data loader workers.
        train_augmentations: Augmentations of training images.
        val_augmentations: Augmentations of validation images.
        test_augmentations: Augmentations of test images.
        augmentations: Augmentations of any subset without its own.
        test_split_mode: How to obtain the test set.
        test_split_ratio: Fraction of training images used for testing if the test set has no normal images.
        val_split_mode: How to obtain the validation set.
        val_split_ratio: Fraction of images used for validation.
        seed: Seed of the validation/test splits.
        image_size: Side of the square images in pixels, at least ``MIN_IMAGE_SIZE`` (32).
        num_train: Number of normal training images.
        num_test_good: Number of normal test images.
        num_test_defect: Number of test images for each defect type (scratch, crack, hole, stain).
        build_seed: Seed of the image rendering; the same build parameters give byte-identical files.

    Example:
        >>> datamodule = SurfaceDemo(root="./datasets/surface_demo", category="brick", image_size=64, num_train=8)
        >>> datamodule.prepare_data()
        >>> datamodule.setup()
        >>> batch = next(iter(datamodule.test_dataloader()))
        >>> batch.image.shape, batch.gt_mask.shape
        (torch.Size([32, 3, 64, 64]), torch.Size([32, 64, 64]))
    """

    def __init__(
        self,
        root: Path | str | None = "./datasets/surface_demo",
        category: str = "brick",
        train_batch_size: int = 32,
        eval_batch_size: int = 32,
        num_workers: int = 8,
        train_augmentations: Transform | None = None,
        val_augmentations: Transform | None = None,
        test_augmentations: Transform | None = None,
        augmentations: Transform | None = None,
        test_split_mode: TestSplitMode | str = TestSplitMode.FROM_DIR,
        test_split_ratio: float = 0.2,
        val_split_mode: ValSplitMode | str = ValSplitMode.SAME_AS_TEST,
        val_split_ratio: float = 0.5,
        seed: int | None = None,
        image_size: int = 256,
        num_train: int = 64,
        num_test_good: int = 16,
        num_test_defect: int = 8,
        build_seed: int = 0,
    ) -> None:
        _check_params(category, image_size, num_train, num_test_good, num_test_defect, build_seed)
        super().__init__(
            root=resolve_dataset_root(root, "surface_demo"),
            category=category,
            train_batch_size=train_batch_size,
            eval_batch_size=eval_batch_size,
            num_workers=num_workers,
            train_augmentations=train_augmentations,
            val_augmentations=val_augmentations,
            test_augmentations=test_augmentations,
            augmentations=augmentations,
            test_split_mode=test_split_mode,
            test_split_ratio=test_split_ratio,
            val_split_mode=val_split_mode,
            val_split_ratio=val_split_ratio,
            seed=seed,
        )
        self.image_size = image_size
        self.num_train = num_train
        self.num_test_good = num_test_good
        self.num_test_defect = num_test_defect
        self.build_seed = build_seed

    def prepare_data(self) -> None:
        """Build the category folder under ``root``, or reuse it if it was built with the same parameters."""
        build_surface_demo(
            self.root,
            self.category,
            image_size=self.image_size,
            num_train=self.num_train,
            num_test_good=self.num_test_good,
            num_test_defect=self.num_test_defect,
            seed=self.build_seed,
        )

    def _setup(self, _stage: str | None = None) -> None:
        if not (self.root / self.category / MANIFEST_NAME).is_file():
            msg = (
                f"No SurfaceDemo data in {self.root / self.category}; call prepare_data() before setup() "
                "(anomalib's Engine does this for you)."
            )
            raise FileNotFoundError(msg)
        super()._setup(_stage)
