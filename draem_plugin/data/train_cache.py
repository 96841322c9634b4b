"""Training images decoded once, through the datamodule's own loader, and then served from the device.

DRÆM trains for hundreds of epochs on a few hundred images. anomalib's training loader decodes every PNG again in
each epoch and starts its worker processes again for each epoch; on a GPU that is the slowest part of a step. The
:class:`TrainImageCache` asks the datamodule for its training loader once (so its dataset, augmentations, resize and
collate decide what the images are), keeps the collated batches on the model's device, and from then on hands the
trainer a :class:`CachedBatchLoader` that shuffles that tensor on the device: no disk, no decoding, no workers, no
host-to-device copy.

Example:
    >>> import torch
    >>> from anomalib.data import ImageBatch
    >>> images = ImageBatch(image=torch.rand(5, 3, 32, 32), image_path=[f"{i}.png" for i in range(5)])
    >>> loader = CachedBatchLoader(images, batch_size=2, seed=0)
    >>> [batch.image.shape[0] for batch in loader]
    [2, 2, 1]
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from anomalib.data import Batch
from lightning.fabric.utilities.apply_func import move_data_to_device
from torch.utils.data import DistributedSampler
from torchvision.transforms import v2

__all__ = ["CachedBatchLoader", "TrainImageCache", "concatenate_batches", "random_transforms", "select_from_batch"]

logger = logging.getLogger(__name__)

#: Share of the free device memory (or of the available host memory on a CPU) the cached images may take.
MEMORY_FRACTION = 0.5

#: torchvision transforms that give the same output every epoch; any other transform is treated as random.
_FIXED_TRANSFORMS = (
    v2.Compose,
    v2.Resize,
    v2.CenterCrop,
    v2.Normalize,
    v2.ToDtype,
    v2.Grayscale,
    v2.ToImage,
    v2.ToPureTensor,
    v2.Identity,
)


def concatenate_batches(batches: Sequence[Batch]) -> Batch:
    """One batch holding all items of ``batches`` (tensors concatenated, lists joined, ``None`` kept).

    Example:
        >>> import torch
        >>> from anomalib.data import ImageBatch
        >>> parts = [ImageBatch(image=torch.rand(n, 3, 8, 8), image_path=["x"] * n) for n in (2, 3)]
        >>> concatenate_batches(parts).image.shape
        torch.Size([5, 3, 8, 8])
    """
    values: dict[str, Any] = {}
    for field in dataclasses.fields(batches[0]):
        parts = [getattr(batch, field.name) for batch in batches]
        if all(part is None for part in parts):
            values[field.name] = None
        elif any(part is None for part in parts):
            msg = f"Cannot cache the training batches: field {field.name!r} is set in some batches and None in others."
            raise ValueError(msg)
        elif isinstance(parts[0], torch.Tensor):
            values[field.name] = torch.cat([part.as_subclass(torch.Tensor) for part in parts])
        else:
            values[field.name] = [item for part in parts for item in part]
    return type(batches[0])(**values)


def select_from_batch(batch: Batch, index: Sequence[int], device_index: torch.Tensor | None = None) -> Batch:
    """The items ``index`` of ``batch``, as a batch of the same type.

    ``device_index`` is ``index`` as a tensor on the batch's device, when the caller has it there already: selecting
    then never copies indices to the device nor reads them back (which would wait for the device).

    Example:
        >>> import torch
        >>> from anomalib.data import ImageBatch
        >>> batch = ImageBatch(image=torch.arange(4.0).view(4, 1, 1, 1).expand(4, 3, 8, 8), image_path=list("abcd"))
        >>> select_from_batch(batch, [3, 0]).image_path
        ['d', 'a']
    """
    index = list(index)
    values: dict[str, Any] = {}
    for field in dataclasses.fields(batch):
        value = getattr(batch, field.name)
        if isinstance(value, torch.Tensor):
            if device_index is None or device_index.device != value.device:
                device_index = torch.tensor(index, dtype=torch.long).to(value.device)
            value = value.index_select(0, device_index)
        elif value is not None:
            value = [value[i] for i in index]
        values[field.name] = value
    return type(batch)(**values)


def random_transforms(transform: Callable | None) -> list[str]:
    """Names of the transforms in ``transform`` that may give a different output each epoch.

    Example:
        >>> from torchvision.transforms import v2
        >>> random_transforms(v2.Compose([v2.Resize(64), v2.RandomHorizontalFlip()]))
        ['RandomHorizontalFlip']
    """
    if transform is None:
        return []
    children = getattr(transform, "transforms", None)
    if isinstance(transform, v2.Compose) and children is not None:
        return [name for child in children for name in random_transforms(child)]
    return [] if isinstance(transform, _FIXED_TRANSFORMS) else [type(transform).__name__]


class CachedBatchLoader:
    """Shuffled training batches drawn from one batch that holds the whole training split.

    Each epoch is a fresh permutation (``DistributedSampler`` with ``seed`` + epoch: Lightning calls
    ``sampler.set_epoch``), split in ``batch_size`` chunks with the last one smaller, as a shuffling ``DataLoader``
    without ``drop_last`` gives them. Under DDP each rank takes its own shard of the permutation, as Lightning's
    distributed sampler would.

    Args:
        data: the whole training split as one batch (on the training device).
        batch_size: items per batch.
        num_replicas: number of DDP ranks.
        rank: this rank.
        seed: shuffling seed (the same on every rank).
    """

    def __init__(self, data: Batch, batch_size: int, num_replicas: int = 1, rank: int = 0, seed: int = 0) -> None:
        self.data = data
        self.batch_size = batch_size
        self.sampler = DistributedSampler(
            range(len(data.image)), num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed
        )

    def __len__(self) -> int:
        return math.ceil(len(self.sampler) / self.batch_size)

    def __iter__(self) -> Iterator[Batch]:
        order = list(self.sampler)
        device = self.data.image.device
        on_device = torch.tensor(order, dtype=torch.long)  # one copy per epoch, which does not wait for the device
        on_device = on_device.pin_memory().to(device, non_blocking=True) if device.type == "cuda" else on_device
        for start in range(0, len(order), self.batch_size):
            stop = start + self.batch_size
            yield select_from_batch(self.data, order[start:stop], on_device[start:stop])


class TrainImageCache:
    """Replace a datamodule's ``train_dataloader`` with one that decodes once and then serves from ``device``.

    :meth:`install` sets ``datamodule.train_dataloader`` (on the instance) to this object and :meth:`remove` takes it
    away again. The first call iterates the datamodule's own training loader once and keeps every batch on
    ``device``; each call returns a :class:`CachedBatchLoader` over the kept images. If the images would take more
    than ``MEMORY_FRACTION`` of the free memory, a warning is logged and the datamodule's own loader is returned.

    Args:
        datamodule: an anomalib datamodule after ``setup("fit")``.
        device: where the images are kept (the model's device).
        seed: shuffling seed, the same on every rank.
        num_replicas: number of DDP ranks.
        rank: this rank.

    Example:
        >>> cache = TrainImageCache(datamodule, torch.device("cuda"), seed=0)  # doctest: +SKIP
        >>> cache.install()  # doctest: +SKIP
        >>> loader = datamodule.train_dataloader()  # decodes once, returns a CachedBatchLoader  # doctest: +SKIP
    """

    def __init__(
        self, datamodule: Any, device: torch.device, seed: int, num_replicas: int = 1, rank: int = 0  # noqa: ANN401
    ) -> None:
        self.datamodule = datamodule
        self.device = torch.device(device)
        self.seed = seed
        self.num_replicas = num_replicas
        self.rank = rank
        self.data: Batch | None = None
        self.seconds = 0.0

    def install(self) -> None:
        """Make ``datamodule.train_dataloader()`` call this cache."""
        self.datamodule.train_dataloader = self

    def remove(self) -> None:
        """Give the datamodule its own ``train_dataloader`` back."""
        if vars(self.datamodule).get("train_dataloader") is self:
            del self.datamodule.train_dataloader

    def _original_loader(self) -> Any:  # noqa: ANN401
        return type(self.datamodule).train_dataloader(self.datamodule)

    def __call__(self) -> Any:  # noqa: ANN401
        """The training loader: a :class:`CachedBatchLoader`, or the datamodule's own if the images do not fit."""
        if self.data is None:
            self.data = self._decode_once()
            if self.data is None:
                self.remove()
                return self._original_loader()
        batch_size = getattr(self.datamodule, "train_batch_size", None) or 1
        return CachedBatchLoader(self.data, batch_size, self.num_replicas, self.rank, self.seed)

    def _decode_once(self) -> Batch | None:
        """Iterate the datamodule's training loader once and keep its batches on the device (``None``: too large)."""
        start = time.perf_counter()
        loader = self._original_loader()
        budget = _free_memory(self.device) * MEMORY_FRACTION
        total = len(getattr(loader, "dataset", ()))
        batches: list[Batch] = []
        held = images = 0
        for batch in loader:
            batches.append(move_data_to_device(batch, self.device))
            held += sum(t.numel() * t.element_size() for t in _tensors(batch))
            images += len(batch.image)
            expected = held / images * max(total, 1)
            if max(held, expected) > budget:
                logger.warning(
                    "The training images are not cached on %s: they need about %.2f GiB, more than %.0f%% of the "
                    "%.2f GiB free there. Each epoch reads them through the datamodule's loader instead (disk and "
                    "decoding every epoch). Use a smaller image_size or set cache_train_images=False to skip this "
                    "check.",
                    self.device, max(held, expected) / 2**30, MEMORY_FRACTION * 100, budget / MEMORY_FRACTION / 2**30,
                )  # fmt: skip
                return None
        if not batches:
            return None
        data = concatenate_batches(batches)
        self.seconds = time.perf_counter() - start
        logger.info(
            "Decoded the %d training images once (%.1f MiB on %s, %.1f s); every epoch now draws from there.",
            len(data.image), held / 2**20, self.device, self.seconds,
        )  # fmt: skip
        return data


def _tensors(batch: Batch) -> list[torch.Tensor]:
    return [value for value in vars(batch).values() if isinstance(value, torch.Tensor)]


def _free_memory(device: torch.device) -> float:
    """Free bytes on ``device``: CUDA's free memory, or the host's available memory (infinite if unknown)."""
    if device.type == "cuda":
        return float(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024
    except OSError:
        pass
    return math.inf
