"""SurfaceDemo on disk: build a category folder in MVTec AD layout once, and reuse it while its parameters match.

Layout, the same as MVTec AD's so that anomalib's ``MVTecAD`` and ``Folder`` read it::

    <root>/<category>/train/good/000.png
    <root>/<category>/test/good/000.png
    <root>/<category>/test/<defect>/000.png
    <root>/<category>/ground_truth/<defect>/000_mask.png
    <root>/<category>/surface_demo.json      (build parameters, format version, crop of every image)

Example:
    >>> folder = build_surface_demo("./datasets/surface_demo", "gravel", image_size=64, num_train=4)
    >>> sorted(path.name for path in folder.iterdir())[:3]
    ['ground_truth', 'surface_demo.json', 'test']
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .render import CATEGORIES, DEFECT_TYPES, photo_columns, render_sample

__all__ = ["FORMAT_VERSION", "MANIFEST_NAME", "MIN_IMAGE_SIZE", "build_surface_demo", "check_params"]

logger = logging.getLogger(__name__)

#: Bump whenever the rendering changes, so that cached datasets are rebuilt.
FORMAT_VERSION = 1
MANIFEST_NAME = "surface_demo.json"
MIN_IMAGE_SIZE = 32
_MAX_MOVE_TRIES = 5


def check_params(
    category: str,
    image_size: int,
    num_train: int,
    num_test_good: int,
    num_test_defect: int,
    seed: int,
) -> None:
    """Refuse build parameters SurfaceDemo cannot build, naming the parameter and what it accepts."""
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
            sample = render_sample(params["category"], split, label, index, params["image_size"], params["seed"])
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
    check_params(category, image_size, num_train, num_test_good, num_test_defect, seed)
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
