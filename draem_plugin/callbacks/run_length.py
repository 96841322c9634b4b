"""Tell the user, early, when a training run cannot finish in reasonable time.

Two cases trip people up: the full-size networks (97.4 M parameters, about two minutes per step of 8 images at
256x256 on a laptop CPU) trained on a CPU, and a run without ``max_epochs`` or ``max_steps``, for which Lightning
trains 1,000 epochs. :class:`RunLengthWarning` times a few steps after the first and logs one warning with the
estimated duration and what to do instead.

Example:
    >>> from anomalib.engine import Engine
    >>> Engine(callbacks=[RunLengthWarning()])  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import torch
from lightning.pytorch import Callback, LightningModule, Trainer

__all__ = ["FULL_SIZE_PARAMETERS", "RunLengthWarning"]

logger = logging.getLogger(__name__)

#: Parameters of the original networks (widths 128 / 64); from half of this on, a network counts as full-size.
FULL_SIZE_PARAMETERS = 97_422_725
#: The epochs Lightning trains when neither ``max_epochs`` nor ``max_steps`` is given.
LIGHTNING_DEFAULT_EPOCHS = 1000


def _duration(seconds: float) -> str:
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h" if seconds < 3 * 86400 else f"{seconds / 86400:.0f} days"


class RunLengthWarning(Callback):
    """Log one warning with the estimated duration when a run is on the CPU at full size or has no epoch limit.

    Args:
        warmup_steps: steps left out of the timing (the first ones allocate, compile and fill caches).
        timed_steps: steps timed to estimate the seconds per step.
    """

    def __init__(self, warmup_steps: int = 1, timed_steps: int = 2) -> None:
        self.warmup_steps = warmup_steps
        self.timed_steps = timed_steps
        self._reasons: list[str] = []
        self._start = 0.0

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Decide whether this run needs the warning."""
        self._reasons = []
        if trainer.max_steps == -1 and trainer.max_epochs == LIGHTNING_DEFAULT_EPOCHS:
            self._reasons.append(
                "neither max_epochs nor max_steps is set, so Lightning trains 1,000 epochs (the recipe is 700)"
            )
        parameters = sum(p.numel() for p in pl_module.parameters())
        if pl_module.device.type == "cpu" and parameters >= FULL_SIZE_PARAMETERS // 2:
            self._reasons.append(f"the networks are full-size ({parameters / 1e6:.1f} M parameters) on a CPU")

    def on_train_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        """Start the clock after the warm-up steps; warn after the timed ones."""
        if not self._reasons or not trainer.is_global_zero:
            return
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize(pl_module.device)
        if trainer.global_step == self.warmup_steps:
            self._start = time.perf_counter()
        elif trainer.global_step == self.warmup_steps + self.timed_steps:
            per_step = (time.perf_counter() - self._start) / self.timed_steps
            total = trainer.estimated_stepping_batches
            estimate = "has no end" if math.isinf(total) else f"takes about {_duration(total * per_step)}"
            logger.warning(
                "This run %s (%s steps x %.2f s per step, measured): %s. Train on a GPU, use the CPU recipe "
                "(configs/draem_plugin_cpu.yaml: widths 16/32 at 128 px), or set fewer epochs "
                "(--trainer.max_epochs N).",
                estimate,
                "unlimited" if math.isinf(total) else f"{int(total):,}",
                per_step,
                "; ".join(self._reasons),
            )
            self._reasons = []
