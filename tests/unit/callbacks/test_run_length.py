"""RunLengthWarning: when it warns, and the duration it estimates from measured steps."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from draem_plugin.callbacks import run_length
from draem_plugin.callbacks.run_length import RunLengthWarning

LOGGER = "draem_plugin.callbacks.run_length"


class Module(nn.Module):
    def __init__(self, parameters: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(parameters))
        self.device = torch.device("cpu")


def trainer(max_epochs: int = 10, max_steps: int = -1, total: float = 1000) -> SimpleNamespace:
    return SimpleNamespace(
        max_epochs=max_epochs, max_steps=max_steps, estimated_stepping_batches=total, global_step=0, is_global_zero=True
    )


def run(callback: RunLengthWarning, fit: SimpleNamespace, module: nn.Module, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter([100.0, 106.0])  # the end of step 1, then of step 3: 3 s per step
    monkeypatch.setattr(run_length.time, "perf_counter", lambda: next(clock))
    callback.on_fit_start(fit, module)
    for step in (1, 2, 3, 4):
        fit.global_step = step
        callback.on_train_batch_end(fit, module, None, None, step - 1)


def test_full_size_networks_on_a_cpu_get_one_warning_with_the_estimate(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        run(RunLengthWarning(), trainer(total=5600), Module(run_length.FULL_SIZE_PARAMETERS), monkeypatch)
    (message,) = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert message.startswith("This run takes about 4.7 h (5,600 steps x 3.00 s per step, measured)")
    assert "full-size (97.4 M parameters) on a CPU" in message
    assert "configs/draem_plugin_cpu.yaml" in message and "--trainer.max_epochs" in message


def test_lightnings_default_of_1000_epochs_is_named(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        run(RunLengthWarning(), trainer(max_epochs=1000, total=27000), Module(10), monkeypatch)
    (message,) = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert "takes about 22.5 h (27,000 steps" in message and "Lightning trains 1,000 epochs" in message


def test_small_bounded_runs_get_no_warning(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        run(RunLengthWarning(), trainer(max_epochs=12), Module(10), monkeypatch)
    assert not [r for r in caplog.records if r.name == LOGGER]
