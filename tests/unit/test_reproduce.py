"""fit_and_measure: the figures of a run, from Lightning's throughput monitor and the networks-alone timing."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from support import TINY, tiny_demo

from draem_plugin import DraemPlugin, reproduce
from draem_plugin.throughput import TRAIN_IMAGES_PER_SECOND, training_flops_per_image


def last_logged(output_dir: Path, name: str) -> float:
    (path,) = output_dir.rglob("metrics.csv")
    with path.open(newline="") as file:
        values = [row[name] for row in csv.DictReader(file) if row.get(name)]
    return float(values[-1])


def fit_tiny(demo_root: Path, output_dir: Path, max_epochs: int) -> tuple[DraemPlugin, dict]:
    datamodule = tiny_demo(demo_root, train_batch_size=4, num_workers=0)
    model = DraemPlugin(**TINY, seed=0, evaluator=False, visualizer=False)
    _, figures = reproduce.fit_and_measure(
        model,
        datamodule,
        output_dir,
        peak_tflops=1.0,
        accelerator="cpu",
        max_epochs=max_epochs,
        enable_progress_bar=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
    )
    return model, figures


def test_figures_come_from_the_logged_throughput_and_the_networks_alone(
    demo_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reproduce, "network_images_per_second", lambda *args, **kwargs: 1000.0)
    model, figures = fit_tiny(demo_root, tmp_path, max_epochs=3)
    assert figures["epochs_done"] == 3
    images_per_second = last_logged(tmp_path, TRAIN_IMAGES_PER_SECOND)
    assert figures["train_images_per_second"] == pytest.approx(images_per_second, abs=0.05)
    flops = training_flops_per_image(4, 4, 64)
    assert model.flops_per_batch == 4 * flops  # what Lightning's monitor reads
    assert figures["train_tflop_per_image"] == round(flops / 1e12, 4)
    assert figures["mfu"] == pytest.approx(flops * images_per_second / 1e12, rel=1e-3, abs=1e-4)
    assert figures["network_images_per_second"] == 1000.0
    assert figures["share_outside_networks"] == pytest.approx(1 - images_per_second / 1000.0, abs=1e-3)


def test_a_loop_faster_than_the_networks_alone_floors_the_share_at_zero_with_a_warning(
    demo_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(reproduce, "network_images_per_second", lambda *args, **kwargs: 0.5)
    with caplog.at_level("WARNING", logger=reproduce.__name__):
        _, figures = fit_tiny(demo_root, tmp_path, max_epochs=1)
    assert figures["train_images_per_second"] > figures["network_images_per_second"]
    assert figures["share_outside_networks"] == 0.0
    assert "share_outside_networks is reported as 0" in caplog.text
