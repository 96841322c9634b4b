"""Fast-path options (bf16-mixed, channels_last, torch.compile) and the `draem-reproduce` command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from anomalib.data import ImageBatch
from anomalib.engine import Engine
from lightning.pytorch import Callback, seed_everything
from support import tiny_demo

from draem_plugin import DraemPlugin
from draem_plugin.throughput import training_flops_per_image
from draem_plugin.torch_model import DraemPluginModel

BIN = Path(sys.executable).parent


class LossRecorder(Callback):
    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.losses.append(float(outputs["loss"]))


def train_losses(root: Path, out: Path, precision: str) -> list[float]:
    seed_everything(0)
    model = DraemPlugin(reconstructive_width=8, discriminative_width=8, image_size=64, score_filter_size=7, seed=0)
    recorder = LossRecorder()
    datamodule = tiny_demo(root, train_batch_size=4, num_workers=0)
    engine = Engine(
        accelerator="cpu",
        precision=precision,
        max_epochs=6,
        callbacks=[recorder],
        logger=False,
        default_root_dir=out,
        enable_progress_bar=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
    )
    engine.fit(model, datamodule=datamodule)
    return recorder.losses


@pytest.mark.slow
def test_bf16_mixed_trains_like_fp32(demo_root: Path, tmp_path: Path) -> None:
    fp32 = train_losses(demo_root, tmp_path / "fp32", "32-true")
    bf16 = train_losses(demo_root, tmp_path / "bf16", "bf16-mixed")
    assert len(fp32) == len(bf16) == 12
    # Same seed, same anomalies: the loss curves agree step by step within 5 % (bf16 rounding), and both decrease.
    for a, b in zip(fp32, bf16, strict=True):
        assert b == pytest.approx(a, rel=0.05)
    assert sum(bf16[-3:]) < sum(bf16[:3])


def test_channels_last_gives_the_same_outputs() -> None:
    torch.manual_seed(0)
    plain = DraemPluginModel(reconstructive_width=4, discriminative_width=4).eval()
    fast = DraemPluginModel(reconstructive_width=4, discriminative_width=4, channels_last=True).eval()
    fast.load_state_dict(plain.state_dict())
    assert fast.reconstructive_subnetwork.encoder[0][0].weight.is_contiguous(memory_format=torch.channels_last)
    image = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        a, b = plain(image), fast(image)
    torch.testing.assert_close(b.anomaly_map, a.anomaly_map, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(b.pred_score, a.pred_score, atol=1e-5, rtol=1e-4)


@pytest.mark.slow
def test_compiled_training_step_matches_eager_and_keeps_the_state_dict(monkeypatch: pytest.MonkeyPatch) -> None:
    """Through torch.compile's graph capture and AOT autograd; the aot_eager backend skips inductor's C++ build."""
    compile_ = torch.compile
    monkeypatch.setattr(torch, "compile", lambda model, **kwargs: compile_(model, backend="aot_eager", **kwargs))
    torch.manual_seed(0)
    eager = DraemPlugin(reconstructive_width=4, discriminative_width=4, image_size=64, score_filter_size=7, seed=1)
    compiled = DraemPlugin(
        reconstructive_width=4,
        discriminative_width=4,
        image_size=64,
        score_filter_size=7,
        seed=1,
        compile_networks=True,
    )
    compiled.load_state_dict(eager.state_dict())
    assert compiled.state_dict().keys() == eager.state_dict().keys()
    batch = ImageBatch(image=torch.rand(2, 3, 64, 64))
    losses = []
    for model in (eager, compiled):
        model.log = model.log_dict = lambda *a, **k: None  # no trainer attached
        model.augmenter.reseed(7)
        losses.append(model.training_step(batch)["loss"].item())
    assert losses[1] == pytest.approx(losses[0], rel=1e-4)


@pytest.mark.slow
def test_reproduce_command_runs_and_resumes(demo_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    common = [
        str(BIN / "draem-reproduce"),
        "--root",
        str(demo_root),
        "--category",
        "brick",
        "--batch_size",
        "4",
        "--image_size",
        "64",
        "--reconstructive_width",
        "4",
        "--discriminative_width",
        "4",
        "--precision",
        "32-true",
        "--channels_last",
        "false",
        "--accelerator",
        "cpu",
        "--num_workers",
        "0",
        "--checkpoint_every_n_epochs",
        "1",
        "--output_dir",
        str(out),
    ]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    first = subprocess.run(
        [*common, "--epochs", "2"], capture_output=True, text=True, env=env, timeout=600, check=False
    )
    assert first.returncode == 0, first.stderr[-3000:]
    figures = json.loads((out / "reproduce.json").read_text())
    assert figures["epochs_done"] == 2
    assert figures["train_tflop_per_image"] == round(training_flops_per_image(4, 4, 64) / 1e12, 4)
    # The share comes from the unrounded rates; the JSON keeps them to 0.1 image/s, so it must lie in the interval
    # those roundings allow. Tiny networks time noisily: the loop may beat the networks-only rate (share floors at 0).
    train, networks = figures["train_images_per_second"], figures["network_images_per_second"]
    lowest = max(0.0, 1 - (train + 0.05) / (networks - 0.05))
    highest = max(0.0, 1 - (train - 0.05) / (networks + 0.05))
    assert lowest - 5e-5 <= figures["share_outside_networks"] <= highest + 5e-5, (figures, lowest, highest)
    for key in ("image_AUROC", "pixel_AUROC", "pixel_AUPR", "pixel_AUPRO"):
        assert 0.0 <= figures[key] <= 1.0
    # The same command with a larger budget continues from last.ckpt instead of starting over.
    second = subprocess.run(
        [*common, "--epochs", "3"], capture_output=True, text=True, env=env, timeout=600, check=False
    )
    assert second.returncode == 0, second.stderr[-3000:]
    assert "Restoring states from the checkpoint" in second.stdout + second.stderr
    assert json.loads((out / "reproduce.json").read_text())["epochs_done"] == 3
