"""``draem-bench train-step``: training throughput and peak memory, DraemPlugin against anomalib's Draem.

One full training step each, as Lightning runs it: ``optimizer.zero_grad`` (set to ``None``), the model's own
``training_step`` (anomaly synthesis on the batch, forward, loss; under ``torch.autocast`` for ``bf16-mixed``),
``loss.backward()`` and an Adam step (lr 1e-4, as both models configure). Both get the same batch of random images,
the same texture folder, image size and sub-network base widths; anomalib's Draem is rebuilt with anomalib's own
sub-networks at those widths (its ``DraemModel`` fixes 128/64). The two are timed alternately after warm-up.

Peak memory is measured in separate steps after the timed ones: the peak above the level before the step
(activations, gradients, temporaries; parameters and Adam state are held before it and reported as ``state``).
CUDA: ``torch.cuda.max_memory_allocated``; CPU: process RSS sampled by a thread.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from .memory import PeakMemory
from .models import build_model, count_parameters
from .settings import TimedSettings, default_texture_source, quiet
from .timing import summarise, time_alternately

__all__ = ["TrainStep"]


def _autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    if precision == "bf16-mixed":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


class _Stepper:
    """One model, its Adam optimizer, and a full training step on a fixed batch."""

    def __init__(
        self,
        model: Any,
        images: torch.Tensor,
        device: torch.device,
        precision: str,
        channels_last: bool,
    ) -> None:
        from anomalib.data import ImageBatch

        self.model = model.to(device)
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
            images = images.contiguous(memory_format=torch.channels_last)
        self.model.train()
        self.batch = ImageBatch(image=images)
        self.optimizer = torch.optim.Adam(self.model.model.parameters(), lr=1e-4)
        self.device = device
        self.precision = precision
        self.note = ""

    def run_augmenter_outside_autocast(self, error: Exception) -> None:
        """Fallback for an augmenter that fails under autocast: run it in float32 with autocast disabled."""
        augmenter = self.model.augmenter
        forward = augmenter.forward

        def forward_fp32(image: torch.Tensor) -> Any:
            with torch.autocast(device_type=image.device.type, enabled=False):
                return forward(image.float())

        augmenter.forward = forward_fp32
        self.note = (
            f"augmenter fails under {self.precision} autocast ({type(error).__name__}: {error}); "
            "timed with the augmenter run in float32 outside autocast"
        )

    def __call__(self) -> torch.Tensor:
        self.optimizer.zero_grad(set_to_none=True)
        with _autocast(self.device, self.precision):
            loss = self.model.training_step(self.batch)["loss"]
        loss.backward()
        self.optimizer.step()
        return loss

    def state_mib(self) -> float:
        """Parameters plus Adam state, in MiB."""
        total = sum(p.numel() * p.element_size() for p in self.model.model.parameters())
        for state in self.optimizer.state.values():
            total += sum(v.numel() * v.element_size() for v in state.values() if isinstance(v, torch.Tensor))
        return total / 2**20


@dataclass
class TrainStep(TimedSettings):
    """Training images/s and peak step memory: DraemPlugin against anomalib's Draem at equal settings.

    A full step each: augmentation + forward + loss (the model's own training_step) + backward + Adam step, on the
    same random images. anomalib's Draem is rebuilt with anomalib's own sub-networks at the widths given.

    Args:
        channels_last: Convert the models and the images to channels_last.
    """

    NAME: ClassVar[str] = "train-step"
    TITLE: ClassVar[str] = "train-step: training images/s and peak step memory (ratio = DraemPlugin / anomalib Draem)"
    COLUMNS: ClassVar[tuple[str, ...]] = (
        "device",
        "batch_size",
        "image_size",
        "widths",
        "precision",
        "channels_last",
        "plugin_images_per_s",
        "anomalib_images_per_s",
        "ratio",
        "plugin_peak_mem_mib",
        "anomalib_peak_mem_mib",
        "memory_ratio",
    )

    channels_last: bool = False

    def measure(self) -> list[dict[str, Any]]:
        """Time full training steps of both DRÆMs; one row with both, ``ratio`` = DraemPlugin images/s over Draem's.

        ``memory_ratio`` is DraemPlugin's peak step memory over Draem's (below 1: DraemPlugin needs less).
        """
        source = default_texture_source(self.source)
        dev = self.torch_device()
        images = torch.rand(
            self.batch_size, 3, self.image_size, self.image_size, generator=torch.Generator().manual_seed(self.seed)
        ).to(dev)
        settings = {
            "image_size": self.image_size,
            "reconstructive_width": self.reconstructive_width,
            "discriminative_width": self.discriminative_width,
            "source": source,
        }
        with quiet():
            start = time.perf_counter()
            plugin_model = build_model("DraemPlugin", seed=self.seed, evaluator=False, visualizer=False, **settings)
            plugin_setup = time.perf_counter() - start
            start = time.perf_counter()
            anomalib_model = build_model("Draem", evaluator=False, visualizer=False, **settings)
            anomalib_setup = time.perf_counter() - start
            torch.manual_seed(self.seed)
            plugin = _Stepper(plugin_model, images, dev, self.precision, self.channels_last)
            anomalib = _Stepper(anomalib_model, images, dev, self.precision, self.channels_last)
            for stepper in (plugin, anomalib):
                try:
                    stepper()
                except (RuntimeError, ValueError, TypeError) as error:
                    if self.precision == "32-true":
                        raise
                    stepper.run_augmenter_outside_autocast(error)
                    stepper()
            contenders = {"plugin": plugin, "anomalib": anomalib}
            times = time_alternately(contenders, dev, warmup=self.warmup, rounds=self.rounds, iters=self.iters)
            with PeakMemory(dev) as plugin_peak:
                plugin()
            with PeakMemory(dev) as anomalib_peak:
                anomalib()
        ours, theirs = summarise(times["plugin"], self.batch_size), summarise(times["anomalib"], self.batch_size)
        return [
            {
                "device": dev.type,
                "batch_size": self.batch_size,
                "image_size": self.image_size,
                "widths": f"{self.reconstructive_width}/{self.discriminative_width}",
                "reconstructive_width": self.reconstructive_width,
                "discriminative_width": self.discriminative_width,
                "precision": self.precision,
                "channels_last": self.channels_last,
                "plugin_images_per_s": ours["images_per_s"],
                "anomalib_images_per_s": theirs["images_per_s"],
                "ratio": ours["images_per_s"] / theirs["images_per_s"],
                "plugin_ms_per_step": ours["latency_ms_p50"],
                "anomalib_ms_per_step": theirs["latency_ms_p50"],
                "plugin_peak_mem_mib": plugin_peak.mib,
                "anomalib_peak_mem_mib": anomalib_peak.mib,
                "memory_ratio": plugin_peak.mib / anomalib_peak.mib if anomalib_peak.bytes > 0 else float("nan"),
                "plugin_state_mib": plugin.state_mib(),
                "anomalib_state_mib": anomalib.state_mib(),
                "plugin_params": count_parameters(plugin.model.model),
                "anomalib_params": count_parameters(anomalib.model.model),
                "plugin_setup_s": plugin_setup,
                "anomalib_setup_s": anomalib_setup,
                "steps_timed": ours["batches"],
                "source": str(source),
                "plugin_note": plugin.note,
                "anomalib_note": anomalib.note,
                "anomalib_widths_note": "anomalib Draem rebuilt with anomalib's ReconstructiveSubNetwork/"
                f"DiscriminativeSubNetwork at base widths {self.reconstructive_width}/{self.discriminative_width}"
                if (self.reconstructive_width, self.discriminative_width) != (128, 64)
                else "anomalib Draem as shipped (128/64)",
            },
        ]
