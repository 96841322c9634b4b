"""Checks of a datamodule's splits before a stage starts: every bad file is named before any step runs.

:class:`SplitCheck` is a Lightning callback (``DraemPlugin.configure_callbacks`` returns it). At ``setup`` it decodes
every image and mask of the splits the stage reads, once, in threads, as the data loader would, and refuses: an empty
train or test split, files that do not decode, 16-bit or float grey images (anomalib's ``convert("RGB")`` clips them
to black or white), and sizes the networks cannot take when the pre-processor does not resize. It logs how images are
converted and resized, warns when a test split has no masks or only one class, and at train start refuses a
pre-processor that normalises (DRÆM blends textures on images in ``[0, 1]``).

Example:
    >>> from anomalib.engine import Engine
    >>> from draem_plugin import DraemPlugin
    >>> DraemPlugin().configure_callbacks()  # doctest: +ELLIPSIS
    [...SplitCheck...]
"""

from __future__ import annotations

import logging
import math
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

from anomalib import TaskType
from anomalib.data.transforms.utils import extract_transforms_by_type
from lightning.pytorch import Callback, LightningModule, Trainer
from torchvision.transforms.v2 import Normalize, Resize

from ..validation import listing
from .images import DECODE_ERRORS, decode_image

__all__ = ["SplitCheck", "scan_images"]

logger = logging.getLogger(__name__)

#: PIL modes that anomalib's ``read_image`` (``convert("RGB")``) clips to black or white: 16/32-bit and float grey.
_HIGH_BIT_DEPTH = ("I", "F")
#: The splits each stage reads.
_SPLITS = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",)}


class ImageScan(NamedTuple):
    """What a full decode of a split's image files found."""

    sizes: Counter[tuple[int, int]]  # (height, width) -> number of images
    modes: Counter[str]
    unreadable: list[str]  # "path (reason)"
    high_bit_depth: list[str]


def _probe(path: str) -> tuple[str, tuple[int, int]] | str:
    """Decode ``path`` (JPEG at 1/8 scale, which still reads all of it): its PIL mode and size, or why it failed."""
    try:
        image = decode_image(path, draft=(1, 1))
    except DECODE_ERRORS as error:
        return f"{type(error).__name__}: {error}"
    width, height = image.info["original_size"]
    return image.mode, (height, width)


def scan_images(paths: Iterable[str]) -> ImageScan:
    """Decode every file of ``paths`` in threads, as the data loader will, and summarise sizes, modes and failures.

    Example:
        >>> scan_images([]).unreadable
        []
    """
    scan = ImageScan(Counter(), Counter(), [], [])
    paths = list(paths)
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        for path, result in zip(paths, pool.map(_probe, paths), strict=True):
            if isinstance(result, str):
                scan.unreadable.append(f"{path} ({result})")
                continue
            mode, size = result
            scan.modes[mode] += 1
            scan.sizes[size] += 1
            if mode.split(";")[0] in _HIGH_BIT_DEPTH:
                scan.high_bit_depth.append(f"{path} ({mode})")
    return scan


def _sizes(sizes: Counter[tuple[int, int]]) -> str:
    """``HxW (count)`` of the most common sizes."""
    return listing(f"{h}x{w} ({n})" for (h, w), n in sizes.most_common())


class SplitCheck(Callback):
    """Refuse unusable splits and images before a stage starts; log conversions, resizing and undefined metrics.

    Args:
        size_multiple: the networks need image sides that are multiples of this when the pre-processor does not
            resize.
    """

    def __init__(self, size_multiple: int) -> None:
        self.size_multiple = size_multiple

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        """Check the images of the splits ``stage`` reads (datamodules only, not bare dataloaders)."""
        datamodule = trainer.datamodule
        if datamodule is None:
            return
        for split in _SPLITS.get(stage, ()):
            dataset = getattr(datamodule, f"{split}_data", None)
            if dataset is not None:
                self._check_split(pl_module, f"{type(datamodule).__name__} {split} split", split, dataset)

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Refuse a pre-processor that normalises: DRÆM blends textures on images in [0, 1]."""
        pre_processor = getattr(pl_module, "pre_processor", None)
        if pre_processor and extract_transforms_by_type(pre_processor.transform, Normalize):
            msg = "DraemPlugin expects images in [0, 1]: remove Normalize from the pre-processor's transform."
            raise ValueError(msg)

    def _check_split(self, pl_module: LightningModule, name: str, split: str, dataset: Any) -> None:
        """Refuse an empty train or test split and images anomalib would misread; log resizing and undefined metrics.

        Every image (and mask) is decoded once in threads, as the data loader will, so a corrupt file is named here
        instead of failing inside a loader worker; that costs about one pass over the split's files.
        """
        if len(dataset) == 0:
            if split == "val":
                return  # Lightning skips validation with its own warning
            msg = (
                f"The {name} is empty: no images to {'train on' if split == 'train' else 'evaluate'}. Check the "
                "folders the datamodule reads (Folder: normal_dir, abnormal_dir, normal_test_dir; MVTecAD: "
                "<root>/<category>/train and test) and its test_split_mode / val_split_mode, which move images "
                "between splits."
            )
            raise ValueError(msg)
        samples = getattr(dataset, "samples", None)
        if samples is None:  # not an anomalib dataset: nothing to inspect
            return
        scan = scan_images(samples["image_path"])
        masks = [path for path in samples.get("mask_path", ()) if isinstance(path, str) and path]
        unreadable = scan.unreadable + scan_images(masks).unreadable
        problems = []
        if unreadable:
            problems.append(f"{len(unreadable)} file(s) cannot be read: {listing(unreadable)}. Remove or replace them")
        if scan.high_bit_depth:
            problems.append(
                f"{len(scan.high_bit_depth)} image(s) are 16-bit, 32-bit or floating-point grey: "
                f"{listing(scan.high_bit_depth)}. anomalib reads images with PIL's convert('RGB'), which clips such "
                "values to black or white; convert them to 8 bits first, e.g. Image.fromarray((np.asarray(image) "
                ">> 8).astype(np.uint8)) for 16-bit PNGs"
            )
        problems += self._size_problems(pl_module, name, scan.sizes)
        if problems:
            raise ValueError(f"The {name} cannot be used: " + "; ".join(problems) + ".")
        converted = {mode: n for mode, n in scan.modes.items() if mode != "RGB"}
        if converted:
            logger.info(
                "%s: images in modes %s are converted to RGB (grey copied to three channels, alpha dropped).",
                name,
                converted,
            )
        if split == "test":
            _warn_undefined_metrics(pl_module, name, dataset, samples)

    def _size_problems(self, pl_module: LightningModule, name: str, sizes: Counter[tuple[int, int]]) -> list[str]:
        """Log how the pre-processor resizes ``sizes``; the problem if the networks cannot take them unresized."""
        pre_processor = getattr(pl_module, "pre_processor", None)
        resizes = extract_transforms_by_type(pre_processor.transform, Resize) if pre_processor else []
        multiple = self.size_multiple
        if not resizes:
            if all(h % multiple == 0 and w % multiple == 0 for h, w in sizes):
                return []
            return [
                f"the images are {_sizes(sizes)} and the pre-processor does not resize them, but the networks need "
                f"sides that are multiples of {multiple}; keep the default pre-processor (it resizes to image_size) "
                "or add Resize((H, W)) to yours"
            ]
        target = tuple(resizes[0].size) if isinstance(resizes[0].size, Sequence) else ()
        other = Counter({size: n for size, n in sizes.items() if size != target})
        if len(target) != 2 or not other:
            return []
        ratio = target[1] / target[0]
        stretched = any(abs(math.log(w / h / ratio)) > 0.01 for h, w in other)
        message = "%s: %d image(s) of %s are resized to %dx%d by the pre-processor (image_size)."
        args = (name, other.total(), _sizes(other), *target)
        if stretched:
            logger.warning(
                message + " Their aspect ratio changes, which stretches defects too; pass an image_size (H, W) of "
                "multiples of %d closer to the images' aspect ratio to keep it.",
                *args,
                multiple,
            )
        else:
            logger.info(message, *args)
        return []


def _warn_undefined_metrics(pl_module: LightningModule, name: str, dataset: Any, samples: Any) -> None:
    """Warn about test metrics that are skipped (no masks) or meaningless (one class only)."""
    evaluator = getattr(pl_module, "evaluator", None)
    metrics = evaluator.test_metrics if evaluator else []
    pixel = [metric.name for metric in metrics if "gt_mask" in metric.fields]
    if pixel and getattr(dataset, "task", None) == TaskType.CLASSIFICATION:
        logger.warning(
            "The %s has no ground-truth masks: the pixel metrics (%s) are skipped and only image metrics are "
            "reported. Give the masks (Folder(mask_dir=...), MVTecAD's ground_truth folder) to evaluate the "
            "anomaly maps.",
            name,
            ", ".join(pixel),
        )
    labels = set(samples["label_index"].tolist()) if "label_index" in samples else set()
    if len(labels) == 1:
        present, missing = ("normal", "anomalous") if labels == {0} else ("anomalous", "normal")
        logger.warning(
            "The %s holds only %s images: AUROC, AUPR, AUPRO and F1 need both classes and report meaningless "
            "values (0 or NaN). Add %s test images (Folder: abnormal_dir, normal_test_dir; MVTecAD: "
            "test/<defect>, test/good) for meaningful metrics.",
            name,
            present,
            missing,
        )
