"""How fast DRÆM trains: Lightning's throughput monitor in the loop, the networks alone, and FLOPs per image.

Training images/s inside Lightning's loop come from Lightning's own ``ThroughputMonitor`` (:func:`throughput_monitor`,
which also gives the model FLOP utilisation from ``DraemPlugin.flops_per_batch`` and the device's peak). The networks
alone are timed by :func:`network_images_per_second`: forward, loss, backward and Adam on a fixed batch, with no data
loading and no anomaly synthesis. The networks' share of a training step is the ratio of the two; the rest (data,
anomaly synthesis, Lightning's loop and logging) is the share outside the networks. FLOPs are counted with Lightning's
``measure_flops`` (``torch.utils.flop_counter``, 2 FLOPs per multiply-add) over the forward and backward pass of both
networks on the meta device (the loss adds well under 0.1 %).

Example:
    >>> round(training_flops_per_image() / 1e12, 3)  # the full-size networks at 256x256
    1.187
"""

from __future__ import annotations

import contextlib
import time

import torch
from lightning.fabric.utilities.throughput import get_available_flops, measure_flops
from lightning.pytorch.callbacks import ThroughputMonitor

from .loss import DraemPluginLoss
from .torch_model import DraemPluginModel
from .validation import as_size

__all__ = [
    "TRAIN_IMAGES_PER_SECOND",
    "network_images_per_second",
    "peak_flops",
    "synchronize",
    "throughput_monitor",
    "training_flops_per_image",
]

#: Lightning precisions that train under ``torch.autocast``, and the dtype they cast to.
_AUTOCAST = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}
#: The metric Lightning's ThroughputMonitor logs for training images per second on one device.
TRAIN_IMAGES_PER_SECOND = "train/device/samples_per_sec"


def synchronize(device: torch.device) -> None:
    """Wait for the kernels queued on ``device`` (CUDA), so that a wall-clock timing is complete."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def training_flops_per_image(
    reconstructive_width: int = 128, discriminative_width: int = 64, image_size: int | tuple[int, int] = 256
) -> int:
    """FLOPs of one training step per image (forward and backward of both networks), counted on the meta device.

    Example:
        >>> training_flops_per_image(8, 8, 128) > 3.9 * training_flops_per_image(8, 8, 64)
        True
    """
    with torch.device("meta"):
        model = DraemPluginModel(reconstructive_width, discriminative_width)
        image = torch.rand(1, 3, *as_size(image_size, "image_size"))
    return int(measure_flops(model, lambda: model(image), lambda outputs: outputs[0].sum() + outputs[1].sum()))


def peak_flops(device: torch.device, precision: str) -> float | None:
    """Lightning's dense peak FLOP/s of ``device`` at the compute dtype of ``precision`` (``None`` if unknown)."""
    dtype = _AUTOCAST.get(precision, torch.float32)
    with contextlib.suppress(Exception):  # Lightning warns and returns None for unknown devices
        return get_available_flops(device, dtype)
    return None


def throughput_monitor(window_size: int = 100) -> ThroughputMonitor:
    """Lightning's ``ThroughputMonitor`` for anomalib batches: logs images/s (and MFU) over ``window_size`` batches.

    It logs to the trainer's loggers every ``log_every_n_steps``: :data:`TRAIN_IMAGES_PER_SECOND` and, when the module
    has a ``flops_per_batch`` attribute and Lightning knows the device's peak, ``train/device/mfu``.
    """
    return ThroughputMonitor(batch_size_fn=lambda batch: batch.image.shape[0], window_size=window_size)


def network_images_per_second(
    reconstructive_width: int = 128,
    discriminative_width: int = 64,
    image_size: int | tuple[int, int] = 256,
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
    height, width = as_size(image_size, "image_size")
    image = torch.rand(batch_size, 3, height, width, device=device, generator=generator)
    mask = (torch.rand(batch_size, 1, height, width, device=device, generator=generator) > 0.9).float()
    dtype = _AUTOCAST.get(str(precision))

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext():
            reconstruction, logits = network(image)
            loss = loss_fn(image, reconstruction, mask, logits)["loss"]
        loss.backward()
        optimizer.step()

    model.train()
    for _ in range(warmup):
        step()
    best = 0.0
    for _ in range(rounds):
        synchronize(device)
        start = time.perf_counter()
        for _ in range(steps):
            step()
        synchronize(device)
        best = max(best, steps * batch_size / (time.perf_counter() - start))
    return best
