"""Stop a training run whose loss turns NaN or inf, before it writes a checkpoint with broken weights.

:class:`FiniteLossGuard` is a Lightning callback (``DraemPlugin.configure_callbacks`` returns it). The module reports
each step's loss terms with :meth:`FiniteLossGuard.track`; the guard counts the non-finite ones on the device and
looks at the count every ``FINITE_CHECK_INTERVAL`` steps (on the CPU every step, before the optimiser sees the loss;
on an accelerator every 32 steps, so that steps never wait for the device), at every epoch end and before every
checkpoint, which is refused when a weight is NaN or inf.

Example:
    >>> import torch
    >>> guard = FiniteLossGuard()
    >>> guard.track({"loss": torch.tensor(float("nan")), "l2": torch.tensor(float("nan"))})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    FloatingPointError: The training loss is NaN or inf at epoch 0, step 0; not finite: loss, l2. ...
"""

from __future__ import annotations

from typing import Any

import torch
from lightning.pytorch import Callback, LightningModule, Trainer

from ..validation import listing

__all__ = ["FINITE_CHECK_INTERVAL", "FiniteLossGuard"]

#: Training steps between host-side NaN / inf checks of the loss, per device type (``"default"``: all others). A
#: check waits for the device, which costs nothing on the CPU; every epoch end and checkpoint is checked as well.
FINITE_CHECK_INTERVAL: dict[str, int] = {"cpu": 1, "default": 32}


class FiniteLossGuard(Callback):
    """Raise ``FloatingPointError`` naming the loss terms that were NaN or inf, and refuse to save broken weights."""

    def __init__(self) -> None:
        self._counts: torch.Tensor | None = None  # per-term count of NaN / inf losses since the last check
        self._names: tuple[str, ...] = ()
        self._steps = 0
        self._trainer: Trainer | None = None
        self._module: LightningModule | None = None

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        """Start every fit with nothing pending."""
        self._trainer, self._module = trainer, pl_module
        self._counts, self._steps = None, 0

    def track(self, losses: dict[str, torch.Tensor]) -> None:
        """Count this step's non-finite ``losses`` (name -> scalar) on their device; check every N steps."""
        values = torch.stack([value.detach().float() for value in losses.values()])
        self._names = tuple(losses)
        count = (~torch.isfinite(values)).int()
        self._counts = count if self._counts is None else self._counts + count
        self._steps += 1
        if self._steps >= FINITE_CHECK_INTERVAL.get(values.device.type, FINITE_CHECK_INTERVAL["default"]):
            self.check()

    def check(self) -> None:
        """Raise ``FloatingPointError`` naming the terms if a loss since the last check was NaN or inf."""
        if self._counts is None:
            return
        counts, steps = self._counts.tolist(), self._steps
        self._counts, self._steps = None, 0
        stop = any(counts)
        trainer = self._trainer
        if trainer is not None:  # all DDP ranks stop together: one rank stopping alone would hang the others
            stop = trainer.strategy.reduce_boolean_decision(stop, all=False)
        if not stop:
            return
        epoch, step = (trainer.current_epoch, trainer.global_step) if trainer is not None else (0, 0)
        where = f"epoch {epoch}, step {step}"
        when = f"at {where}" if steps == 1 else f"within the {steps} steps up to {where}"
        terms = ", ".join(
            f"{name} ({n}x)" if steps > 1 else name for name, n in zip(self._names, counts, strict=True) if n
        )
        terms = terms or "the loss of another DDP rank"
        msg = (
            f"The training loss is NaN or inf {when}; not finite: {terms}. Training stops here, so no checkpoint with "
            f"NaN weights is written (earlier checkpoints are intact). {self._fixes()}"
        )
        raise FloatingPointError(msg)

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Look at the losses not checked yet."""
        self.check()

    def on_save_checkpoint(self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]) -> None:
        """Refuse to save after a NaN / inf loss or with NaN / inf weights."""
        self.check()
        networks = getattr(pl_module, "model", pl_module)
        tensors = {name: t for name, t in networks.state_dict().items() if t.is_floating_point()}
        finite = torch.stack([torch.isfinite(t).all() for t in tensors.values()]).tolist() if tensors else []
        bad = [name for name, ok in zip(tensors, finite, strict=True) if not ok]
        if bad:
            msg = (
                f"The network weights hold NaN or inf ({listing(bad)}), so no checkpoint is written: training "
                f"diverged. {self._fixes()}"
            )
            raise FloatingPointError(msg)

    def _fixes(self) -> str:
        """What to change after a NaN / inf loss or weight."""
        lr = self._module.hparams.get("lr", "unknown") if self._module is not None else "unknown"
        precision = self._trainer.precision if self._trainer is not None else "unknown"
        return (
            f"Fixes: lower lr (set to {lr}), train in full precision (precision='32-true'; now {precision}), clip "
            "gradients (gradient_clip_val), and check the training images (values in [0, 1])."
        )
