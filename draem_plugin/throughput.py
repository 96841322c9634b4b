"""How fast DRÆM trains: images/s inside Lightning's loop, images/s of the networks alone, and FLOPs per image.

The networks' share of a training step is ``train_images_per_second / network_images_per_second``; the rest of the
step (data loading, anomaly synthesis, Lightning's loop and logging) is the share outside the networks.

FLOPs are counted with ``torch.utils.flop_counter.FlopCounterMode`` (2 FLOPs per multiply-add) over the forward
and backward pass of both networks on the meta device (the loss adds well under 0.1 %).

Example:
    >>> round(training_flops_per_image() / 1e12, 3)  # the full-size networks at 256x256
    1.187
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from torch.utils.flop_counter import FlopCounterMode

from .loss import DraemPluginLoss
from .torch_model import DraemPluginModel

__all__ = ["ThroughputMonitor", "network_images_per_second", "training_flops_per_image"]

#: Lightning precisions that train under ``torch.autocast``, and the dtype they cast to.
_AUTOCAST = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}


def training_flops_per_image(reconstructive_width: int = 128, discriminative_width: int = 64, image_size: int = 256) -> int:
    """FLOPs of one training step per image (forward and backward of both networks), counted on the meta device.

    Example:
        >>> training_flops_per_image(8, 8, 64) > 0
        True
    """
    with torch.device("meta"):
        model = DraemPluginModel(reconstructive_width, discriminative_width)
        image = torch.rand(1, 3, image_size, image_size)
    counter = FlopCounterMode(display=False)
    with counter:
        reconstruction, logits = model(image)
        (reconstruction.sum() + logits.sum()).backward()
    return int(counter.get_total_flops())


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class ThroughputMonitor(Callback):
    """Training images per second over the training epochs (validation excluded; the first epoch is warm-up)."""

    def __init__(self) -> None:
        self.images = 0
        self.seconds = 0.0
        self._epoch_images = 0
        self._start = 0.0

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        _sync(pl_module.device)
        self._epoch_images = 0
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int) -> None:  # noqa: ANN401
        self._epoch_images += batch.image.shape[0] * trainer.world_size

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        _sync(pl_module.device)
        if trainer.current_epoch > 0 or trainer.max_epochs == 1:
            self.images += self._epoch_images
            self.seconds += time.perf_counter() - self._start

    @property
    def images_per_second(self) -> float:
        """Measured training throughput (0 before the second epoch ends)."""
        return self.images / self.seconds if self.seconds else 0.0


def network_images_per_second(
    reconstructive_width: int = 128,
    discriminative_width: int = 64,
    image_size: int = 256,
    batch_size: int = 8,
    precision: str = "32-true",
    channels_last: bool = False,
    compile_networks: bool = False,
    device: str | torch.device = "cpu",
    steps: int = 10,
    warmup: int = 3,
    rounds: int = 3,
) -> float:
    """Training images/s of the networks alone: forward, loss, backward and Adam step on one fixed batch.

    A fresh pair of networks of the given size is timed (the weights do not change the speed), under the same
    autocast Lightning applies for ``precision``; no data loading and no anomaly synthesis. The best of ``rounds``
    rounds of ``steps`` steps is returned, which keeps other work on a shared machine out of the figure.

    Example:
        >>> network_images_per_second(4, 4, 32, batch_size=2, steps=1, warmup=0, rounds=1) > 0
        True
    """
    device = torch.device(device)
    model = DraemPluginModel(reconstructive_width, discriminative_width, channels_last=channels_last).to(device)
    network = torch.compile(model) if compile_networks else model
    loss_fn = DraemPluginLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    generator = torch.Generator(device).manual_seed(0)
    image = torch.rand(batch_size, 3, image_size, image_size, device=device, generator=generator)
    mask = (torch.rand(batch_size, 1, image_size, image_size, device=device, generator=generator) > 0.9).float()
    dtype = _AUTOCAST.get(str(precision))

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext():
            reconstruction, logits = network(image)
            loss = loss_fn(image, reconstruction, mask, logits)
        loss.backward()
        optimizer.step()

    model.train()
    for _ in range(warmup):
        step()
    best = 0.0
    for _ in range(rounds):
        _sync(device)
        start = time.perf_counter()
        for _ in range(steps):
            step()
        _sync(device)
        best = max(best, steps * batch_size / (time.perf_counter() - start))
    return best
