"""Helpers of the workflow tests: the ``anomalib`` command with tiny settings, its logs and its outputs.

The fixtures that use them (``trained_run``, ``frames``, ``lightning_predictions``) are in ``integration/conftest.py``.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

BIN = Path(sys.executable).parent
MAX_EPOCHS = 4
#: 100x the original learning rate, so that 4 epochs of the tiny networks give scores that differ between images
#: (at 1e-4 every score is the same to 1e-7 and the min-max normalisation divides by ~0).
LR = 0.01
RNG_KEY = "draem_plugin_augmenter_rng_state"
FRAME_SIZE = 256
OUTPUT_FIELDS = ("pred_score", "pred_label", "anomaly_map", "pred_mask")


def run_cli(args: list[str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run the installed ``anomalib`` command; fail the test with the output's tail unless it exits 0."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "ignore"}
    result = subprocess.run(
        [str(BIN / "anomalib"), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, f"anomalib {args[0]} failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    return result


def export_torch(checkpoint: Path, out: Path, cwd: Path) -> Path:
    """``anomalib export --export_type torch`` of ``checkpoint`` under ``out``; the exported ``model.pt``."""
    args = ["export", "--model", "DraemPlugin", "--ckpt_path", str(checkpoint), "--export_type", "torch"]
    run_cli([*args, "--default_root_dir", str(out)], cwd=cwd)
    (exported,) = Path(out).rglob("weights/torch/model.pt")
    return exported


def model_args() -> list[str]:
    return [
        "--model",
        "DraemPlugin",
        "--model.reconstructive_width",
        "4",
        "--model.discriminative_width",
        "4",
        "--model.image_size",
        "[64,64]",
        "--model.score_filter_size",
        "7",
        "--model.lr",
        str(LR),
        "--model.seed",
        "0",
        "--seed_everything",
        "0",
    ]


def data_args(demo_root: Path) -> list[str]:
    return [
        "--data",
        "SurfaceDemo",
        "--data.root",
        str(demo_root),
        "--data.image_size",
        "64",
        "--data.num_train",
        "8",
        "--data.num_test_good",
        "4",
        "--data.num_test_defect",
        "2",
        "--data.train_batch_size",
        "4",
        "--data.eval_batch_size",
        "8",
        "--data.num_workers",
        "0",
    ]


def trainer_args(out: Path) -> list[str]:
    """CPU, no progress bar, metrics to ``out/logs/**/metrics.csv``, results under ``out``."""
    return [
        "--trainer.accelerator",
        "cpu",
        "--trainer.enable_progress_bar",
        "false",
        "--trainer.logger",
        "lightning.pytorch.loggers.CSVLogger",
        "--trainer.logger.save_dir",
        str(out / "logs"),
        "--default_root_dir",
        str(out),
    ]


def callback_args(checkpoints: Path) -> list[str]:
    """``max_epochs``, a checkpoint after every epoch (``epoch=<n>.ckpt``) and ``last.ckpt``, the LR of every epoch."""
    return [
        "--trainer.max_epochs",
        str(MAX_EPOCHS),
        "--trainer.callbacks+=anomalib.callbacks.ModelCheckpoint",
        "--trainer.callbacks.dirpath",
        str(checkpoints),
        "--trainer.callbacks.filename",
        "{epoch}",
        "--trainer.callbacks.save_top_k",
        "-1",
        "--trainer.callbacks.save_last",
        "true",
        "--trainer.callbacks+=lightning.pytorch.callbacks.LearningRateMonitor",
        "--trainer.callbacks.logging_interval",
        "epoch",
    ]


def logged_rows(out: Path) -> list[dict[str, float]]:
    """The rows of the CSV logger's ``metrics.csv`` under ``out``, empty cells left out."""
    (path,) = out.rglob("metrics.csv")
    with path.open(newline="") as file:
        return [{key: float(value) for key, value in row.items() if value != ""} for row in csv.DictReader(file)]


def logged_test_metrics(out: Path) -> dict[str, float]:
    """The test metrics logged under ``out`` (the only row with ``pixel_AUPRO``)."""
    (row,) = [row for row in logged_rows(out) if "pixel_AUPRO" in row]
    return {key: value for key, value in row.items() if key.startswith(("image_", "pixel_"))}


def logged_validation_metrics(out: Path) -> list[dict[str, float]]:
    """The validation metrics logged under ``out``, one dict per validation run in logging order."""
    rows = [row for row in logged_rows(out) if "image_AUROC" in row and "pixel_AUPRO" not in row]
    return [{key: value for key, value in row.items() if key.startswith(("image_", "pixel_"))} for row in rows]


def load_checkpoint(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


@dataclass(frozen=True)
class TrainedRun:
    """Where the ``anomalib train`` run put its outputs."""

    demo_root: Path
    out: Path
    checkpoints: Path

    @property
    def last(self) -> Path:
        return self.checkpoints / "last.ckpt"

    def after_epoch(self, epoch: int) -> Path:
        return self.checkpoints / f"epoch={epoch}.ckpt"


def frame_files(frames: Path) -> list[Path]:
    return sorted(frames.rglob("*.png"))
