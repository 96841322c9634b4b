"""Training images decoded once, through the datamodule's own loader, and then served from the device.

DRÆM trains for hundreds of epochs on a few hundred images. anomalib's training loader decodes every PNG again in
each epoch and starts its worker processes again for each epoch; on a GPU that is the slowest part of a step. The
:class:`TrainImageCache` callback asks the datamodule for its training loader once (so its dataset, augmentations,
resize and collate decide what the images are), keeps the collated batches on the model's device, and from then on
hands the trainer a :class:`CachedBatchLoader` that shuffles that tensor on the device: no disk, no decoding, no
workers, no host-to-device copy.

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
from pathlib import Path
from typing import Any

import torch
from anomalib.data import AnomalibDataModule, Batch
from lightning.fabric.utilities.apply_func import move_data_to_device
from lightning.pytorch import Callback, LightningModule, Trainer
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


class TrainImageCache(Callback):
    """Serve a datamodule's training images from the device after one decoding pass through its own loader.

    At fit start the callback replaces ``datamodule.train_dataloader`` (on the instance) and gives it back at
    teardown. The first call iterates the datamodule's own training loader once, keeps every batch on the model's
    device and sorts the images by path (so the cache does not depend on that loader's shuffling); each call then
    returns a :class:`CachedBatchLoader` over the kept images. Nothing is cached, with a logged reason, when the data
    is not an anomalib datamodule, when its ``train_augmentations`` are random (they must be drawn again each epoch),
    with ``overfit_batches``, or when the images would take more than ``MEMORY_FRACTION`` of the free memory.

    Args:
        seed: shuffling seed of the cached images (rank 0's is used on every rank); ``None`` draws it at fit time
            from torch's global generator, so ``seed_everything`` fixes it. It is saved in checkpoints.

    Example:
        >>> from anomalib.engine import Engine
        >>> Engine(callbacks=[TrainImageCache(seed=0)])  # doctest: +SKIP
    """

    def __init__(self, seed: int | None = None) -> None:
        self.seed = seed
        self.data: Batch | None = None
        self.seconds = 0.0
        self._datamodule: Any = None
        self._device = torch.device("cpu")
        self._shard = (1, 0)

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        """Draw the shuffling seed when none was given (a resumed run restores the saved one afterwards)."""
        if stage == "fit" and self.seed is None:
            self.seed = int(torch.randint(2**31 - 1, (1,)).item())

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Install the cache on the datamodule, unless its images must be read again each epoch."""
        datamodule = trainer.datamodule
        if not isinstance(datamodule, AnomalibDataModule):
            logger.info("Training images are not cached: the training data does not come from an anomalib datamodule.")
            return
        randomised = random_transforms(getattr(datamodule, "train_augmentations", None))
        if randomised:
            logger.warning(
                "Training images are not cached on the device: the datamodule's train_augmentations hold random "
                "transforms (%s), which must be drawn again each epoch, so every epoch decodes the images again. Set "
                "cache_train_images=False to silence this.",
                ", ".join(randomised),
            )
            return
        if trainer.overfit_batches > 0:
            logger.info("Training images are not cached: overfit_batches replaces the training sampler.")
            return
        self.seed = trainer.strategy.broadcast(self.seed, src=0)
        self._datamodule, self._device = datamodule, pl_module.device
        self._shard = (trainer.world_size, trainer.global_rank)
        datamodule.train_dataloader = self._train_dataloader

    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        """Give the datamodule its own ``train_dataloader`` back and free the cached images."""
        if self._datamodule is not None and "train_dataloader" in vars(self._datamodule):
            del self._datamodule.train_dataloader
        self._datamodule, self.data = None, None

    def state_dict(self) -> dict[str, Any]:
        """The shuffling seed, so that a resumed run continues the same order of images."""
        return {"seed": self.seed}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Adopt a checkpoint's shuffling seed."""
        self.seed = state_dict.get("seed", self.seed)

    def _original_loader(self) -> Any:
        return type(self._datamodule).train_dataloader(self._datamodule)

    def _train_dataloader(self) -> Any:
        """The training loader: a :class:`CachedBatchLoader`, or the datamodule's own if the images do not fit."""
        if self.data is None:
            self.data = self._decode_once()
            if self.data is None:
                del self._datamodule.train_dataloader
                return self._original_loader()
        batch_size = getattr(self._datamodule, "train_batch_size", None) or 1
        return CachedBatchLoader(self.data, batch_size, *self._shard, seed=self.seed or 0)

    def _decode_once(self) -> Batch | None:
        """Iterate the datamodule's training loader once and keep its batches on the device (``None``: too large)."""
        start = time.perf_counter()
        loader = self._original_loader()
        budget = _free_memory(self._device) * MEMORY_FRACTION
        total = len(getattr(loader, "dataset", ()))
        batches: list[Batch] = []
        held = images = 0
        for batch in loader:
            batches.append(move_data_to_device(batch, self._device))
            held += sum(t.numel() * t.element_size() for t in _tensors(batch))
            images += len(batch.image)
            expected = held / images * max(total, 1)
            if max(held, expected) > budget:
                logger.warning(
                    "The training images are not cached on %s: they need about %.2f GiB, more than %.0f%% of the "
                    "%.2f GiB free there. Each epoch reads them through the datamodule's loader instead (disk and "
                    "decoding every epoch). Use a smaller image_size or set cache_train_images=False to skip this "
                    "check.",
                    self._device,
                    max(held, expected) / 2**30,
                    MEMORY_FRACTION * 100,
                    budget / MEMORY_FRACTION / 2**30,
                )
                return None
        if not batches:
            return None
        data = concatenate_batches(batches)
        paths = getattr(data, "image_path", None)
        if paths is not None:
            data = select_from_batch(data, sorted(range(len(paths)), key=lambda i: str(paths[i])))
        self.seconds = time.perf_counter() - start
        logger.info(
            "Decoded the %d training images once (%.1f MiB on %s, %.1f s); every epoch now draws from there.",
            len(data.image),
            held / 2**20,
            self._device,
            self.seconds,
        )
        return data


def _tensors(batch: Batch) -> list[torch.Tensor]:
    return [value for value in vars(batch).values() if isinstance(value, torch.Tensor)]


def _free_memory(device: torch.device) -> float:
    """Free bytes on ``device``: CUDA's free memory, or the host's available memory (infinite if unknown)."""
    if device.type == "cuda":
        return float(torch.cuda.mem_get_info(device)[0])
    try:
        with Path("/proc/meminfo").open(encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024
    except OSError:
        pass
    return math.inf
