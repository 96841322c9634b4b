"""Throughput figures: Lightning's monitor on anomalib batches, the networks-only timing, FLOPs per image."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from anomalib.engine import Engine
from lightning.pytorch.loggers import CSVLogger
from support import TINY, tiny_demo

from draem_plugin import DraemPlugin, throughput
from draem_plugin.throughput import network_images_per_second, peak_flops, throughput_monitor, training_flops_per_image


def test_lightnings_monitor_counts_the_images_of_anomalib_batches(demo_root: Path, tmp_path: Path) -> None:
    engine = Engine(
        accelerator="cpu",
        max_epochs=3,
        callbacks=[throughput_monitor(window_size=2)],
        logger=CSVLogger(tmp_path),
        log_every_n_steps=1,
        default_root_dir=tmp_path,
        enable_progress_bar=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
    )
    datamodule = tiny_demo(demo_root, train_batch_size=3, num_workers=0)
    engine.fit(DraemPlugin(**TINY, evaluator=False, visualizer=False), datamodule=datamodule)
    logged = engine.trainer.logged_metrics
    assert logged["train/samples"] == 3 * 8  # batches of 3, 3 and 2 images in each of 3 epochs
    assert logged["train/batches"] == 3 * 3
    assert logged[throughput.TRAIN_IMAGES_PER_SECOND] > 0


def test_networks_alone_report_the_best_round(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two rounds of 2 steps of 2 images that take 1.0 s and 0.5 s: the best is 4 / 0.5 = 8 images/s."""
    clock = iter([0.0, 1.0, 10.0, 10.5])
    monkeypatch.setattr(throughput.time, "perf_counter", lambda: next(clock))
    assert network_images_per_second(4, 4, 32, batch_size=2, steps=2, warmup=0, rounds=2) == pytest.approx(8.0)


def test_flops_per_image_match_the_issue_figure() -> None:
    # 1.19 TFLOP per 256x256 training image (forward + backward, 2 FLOPs per multiply-add).
    assert training_flops_per_image() / 1e12 == pytest.approx(1.19, abs=0.01)
    # Quadratic in the image side; a (H, W) size counts H x W.
    assert training_flops_per_image(8, 8, 128) == pytest.approx(4 * training_flops_per_image(8, 8, 64), rel=0.01)
    assert training_flops_per_image(8, 8, (128, 64)) == pytest.approx(2 * training_flops_per_image(8, 8, 64), rel=0.01)


def test_the_peak_of_a_cpu_is_unknown() -> None:
    assert peak_flops(torch.device("cpu"), "bf16-mixed") is None
