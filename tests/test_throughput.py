"""Throughput figures: images counted by the monitor, the networks-only timing, FLOPs per image."""

from __future__ import annotations

from pathlib import Path

import pytest
from anomalib.engine import Engine

from draem_plugin import DraemPlugin, SurfaceDemo
from draem_plugin.throughput import ThroughputMonitor, network_images_per_second, training_flops_per_image

from conftest import TINY


def test_monitor_counts_the_images_of_every_epoch_after_the_first(demo_root: Path, tmp_path: Path) -> None:
    monitor = ThroughputMonitor()
    engine = Engine(accelerator="cpu", max_epochs=3, callbacks=[monitor], logger=False, default_root_dir=tmp_path,
                    enable_progress_bar=False, num_sanity_val_steps=0, limit_val_batches=0)  # fmt: skip
    datamodule = SurfaceDemo(root=demo_root, image_size=64, num_train=8, num_test_good=4, num_test_defect=2,
                             train_batch_size=3, num_workers=0)  # fmt: skip
    engine.fit(DraemPlugin(**TINY, evaluator=False, visualizer=False), datamodule=datamodule)
    assert monitor.images == 2 * 8  # epochs 1 and 2; epoch 0 is warm-up
    assert monitor.seconds > 0
    assert monitor.images_per_second == pytest.approx(16 / monitor.seconds)


@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed"])
def test_networks_alone_are_timed_at_every_precision(precision: str) -> None:
    assert network_images_per_second(4, 4, 64, batch_size=2, precision=precision, steps=2, warmup=1) > 0


def test_flops_per_image_match_the_issue_figure() -> None:
    # 1.19 TFLOP per 256x256 training image (forward + backward, 2 FLOPs per multiply-add).
    assert training_flops_per_image() / 1e12 == pytest.approx(1.19, abs=0.01)
    # Quadratic in the image side.
    assert training_flops_per_image(8, 8, 128) == pytest.approx(4 * training_flops_per_image(8, 8, 64), rel=0.01)
