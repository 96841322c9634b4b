"""FiniteLossGuard at the unit level (end to end, with checkpoints: tests/integration/test_numerics.py)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from draem_plugin.callbacks import finite_loss
from draem_plugin.callbacks.finite_loss import FiniteLossGuard


def losses(*values: float) -> dict[str, torch.Tensor]:
    return dict(zip(("loss", "l2", "ssim", "focal"), map(torch.tensor, values), strict=False))


def attached(guard: FiniteLossGuard, epoch: int = 1, step: int = 7) -> FiniteLossGuard:
    decisions: list[bool] = []
    strategy = SimpleNamespace(reduce_boolean_decision=lambda stop, all: decisions.append(stop) or stop)
    trainer = SimpleNamespace(current_epoch=epoch, global_step=step, precision="bf16-mixed", strategy=strategy)
    module = SimpleNamespace(hparams={"lr": 0.002}, model=nn.Linear(2, 2))
    guard.setup(trainer, module, "fit")
    guard.decisions = decisions
    return guard


def test_a_nan_term_stops_at_once_on_the_cpu_naming_the_terms_and_fixes() -> None:
    guard = attached(FiniteLossGuard())
    guard.track(losses(1.0, 0.5, 0.2, 0.3))
    with pytest.raises(FloatingPointError) as info:
        guard.track(losses(math.nan, 0.5, math.inf, 0.3))
    message = str(info.value)
    assert "NaN or inf at epoch 1, step 7; not finite: loss, ssim." in message
    assert "lower lr (set to 0.002)" in message and "now bf16-mixed" in message
    assert guard.decisions == [False, True]  # every rank takes part in the decision


def test_on_an_accelerator_the_counts_wait_for_the_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(finite_loss.FINITE_CHECK_INTERVAL, "cpu", 3)
    guard = attached(FiniteLossGuard())
    guard.track(losses(math.nan, math.nan, 0.1, 0.1))
    guard.track(losses(1.0, 1.0, 0.1, 0.1))
    with pytest.raises(
        FloatingPointError, match=r"within the 3 steps up to epoch 1, step 7; not finite: loss \(2x\), l2 \(1x\)"
    ):
        guard.track(losses(math.nan, 0.5, 0.1, 0.1))


def test_no_checkpoint_with_broken_weights() -> None:
    guard = attached(FiniteLossGuard())
    module = SimpleNamespace(model=nn.Linear(2, 2))
    guard.on_save_checkpoint(None, module, {})
    with torch.no_grad():
        module.model.bias[1] = math.inf
    with pytest.raises(FloatingPointError, match=r"weights hold NaN or inf \(bias\), so no checkpoint is written"):
        guard.on_save_checkpoint(None, module, {})
