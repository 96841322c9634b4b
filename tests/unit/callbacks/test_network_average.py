"""NetworkAverage: a bias-corrected EMA of the networks that training never sees, saved, resumed and kept at the end."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from anomalib.engine import Engine
from lightning.pytorch import Callback
from lightning.pytorch.callbacks import ModelCheckpoint
from support import TINY, messages, tiny_demo, tiny_engine, tiny_model

from draem_plugin import DraemPlugin
from draem_plugin.callbacks import NetworkAverage
from draem_plugin.callbacks.network_average import ema_weight

LOGGER = "draem_plugin.callbacks.network_average"


class StepWeights(Callback):
    """The networks' state after every optimiser step."""

    def __init__(self) -> None:
        self.states: list[dict[str, torch.Tensor]] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.states.append({name: value.clone() for name, value in pl_module.model.state_dict().items()})


def fit(root: Path, out: Path, ema_decay: float | None, epochs: int = 2, **kwargs: object) -> DraemPlugin:
    """Fit the tiny model (2 steps an epoch) and return it."""
    model = tiny_model(ema_decay=ema_decay)
    tiny_engine(out, max_epochs=epochs, **kwargs).fit(model, datamodule=tiny_demo(root))
    return model


def checkpoint(out: Path) -> dict:
    (path,) = out.rglob("weights/lightning/model.ckpt")
    return torch.load(path, map_location="cpu", weights_only=False)


def networks(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {name.removeprefix("model."): value for name, value in state.items() if name.startswith("model.")}


def test_ema_weight_gives_a_bias_corrected_average() -> None:
    decay, values = 0.9, torch.tensor([3.0, -1.0, 4.0, 1.0, -5.0, 9.0])
    average = torch.tensor(0.0)
    for updates, value in enumerate(values, start=1):
        average = torch.lerp(average, value, ema_weight(decay, updates))
        powers = decay ** torch.arange(updates - 1, -1, -1, dtype=torch.float64)
        expected = (1 - decay) * (powers * values[:updates].double()).sum() / (1 - decay**updates)
        assert float(average) == pytest.approx(float(expected), rel=1e-6)
    assert ema_weight(decay, 1) == 1.0
    assert ema_weight(decay, 10_000) == pytest.approx(1 - decay)


@pytest.mark.parametrize("decay", [0.0, 1.0, -0.5, 1.5])
def test_a_decay_outside_zero_and_one_is_refused(decay: float) -> None:
    with pytest.raises(ValueError, match=r"ema_decay must be in \(0, 1\)"):
        NetworkAverage(decay)
    with pytest.raises(ValueError, match=r"ema_decay must be in \(0, 1\)"):
        DraemPlugin(**TINY, ema_decay=decay)


def test_training_is_unchanged_and_the_average_is_validated_saved_and_kept(demo_root: Path, tmp_path: Path) -> None:
    decay = 0.5
    plain = fit(demo_root, tmp_path / "plain", None)
    steps = StepWeights()
    averaged = fit(demo_root, tmp_path / "averaged", decay, callbacks=[steps])
    saved = checkpoint(tmp_path / "averaged")
    # training follows the same weights: the average is only read from them
    current = networks(saved["current_model_state"])
    assert all(torch.equal(current[name], value) for name, value in networks(plain.state_dict()).items())
    assert all(torch.equal(current[name], value) for name, value in steps.states[-1].items())
    # the checkpoint's networks are the bias-corrected average of the 4 steps' weights, BatchNorm statistics included
    assert int(saved["averaging_state"]["n_averaged"]) == len(steps.states) == 4
    average = networks(saved["state_dict"])
    for name, value in average.items():
        if not torch.is_floating_point(value):
            assert torch.equal(value, steps.states[-1][name]), name
            continue
        expected = steps.states[0][name].clone()
        for updates, state in enumerate(steps.states[1:], start=2):
            expected = torch.lerp(expected, state[name], ema_weight(decay, updates))
        torch.testing.assert_close(value, expected, rtol=1e-5, atol=1e-7, msg=name)
    assert any(not torch.equal(average[name], current[name]) for name in average)
    # training ends with the average in the module
    assert all(torch.equal(value, average[name]) for name, value in averaged.model.state_dict().items())
    # and the thresholds validation computed come from it: the post-processor's state is not averaged
    assert torch.equal(saved["state_dict"]["post_processor._image_threshold"], averaged.post_processor._image_threshold)


def test_a_resumed_run_continues_the_average(demo_root: Path, tmp_path: Path) -> None:
    every_epoch = ModelCheckpoint(dirpath=tmp_path / "steps", filename="{step}", save_top_k=-1, every_n_train_steps=2)
    whole = fit(demo_root, tmp_path / "whole", 0.5, callbacks=[every_epoch])
    first = tmp_path / "steps" / "step=2.ckpt"  # after the first of two epochs
    resumed = tiny_model(ema_decay=0.5)
    tiny_engine(tmp_path / "resumed", max_epochs=2).fit(resumed, datamodule=tiny_demo(demo_root), ckpt_path=first)
    for name, value in whole.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[name], value, rtol=1e-5, atol=1e-6, msg=name)
    assert int(checkpoint(tmp_path / "resumed")["averaging_state"]["n_averaged"]) == 4


def test_resuming_from_a_checkpoint_without_an_average_starts_one_and_says_so(
    demo_root: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fit(demo_root, tmp_path / "plain", None, epochs=1)
    (first,) = (tmp_path / "plain").rglob("weights/lightning/model.ckpt")
    model = tiny_model(ema_decay=0.5)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        tiny_engine(tmp_path / "resumed", max_epochs=2).fit(model, datamodule=tiny_demo(demo_root), ckpt_path=first)
    (warning,) = messages(caplog, logging.WARNING, LOGGER)
    assert "holds no network average" in warning
    assert int(checkpoint(tmp_path / "resumed")["averaging_state"]["n_averaged"]) == 2


def test_testing_a_checkpoint_uses_the_average_without_warnings(
    demo_root: Path, tmp_path: Path, recwarn: pytest.WarningsRecorder
) -> None:
    fit(demo_root, tmp_path / "fit", 0.5)
    (path,) = (tmp_path / "fit").rglob("weights/lightning/model.ckpt")
    model = tiny_model(ema_decay=0.5)
    Engine(accelerator="cpu", logger=False, enable_progress_bar=False, default_root_dir=tmp_path / "test").test(
        model, datamodule=tiny_demo(demo_root), ckpt_path=path
    )
    saved = networks(checkpoint(tmp_path / "fit")["state_dict"])
    assert all(torch.equal(value, saved[name]) for name, value in model.model.state_dict().items())
    assert not [w for w in recwarn if "WeightAveraging" in str(w.message)]
