"""PeriodicTest: metrics every N epochs, without changing how the model trains; the curve file and chart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from anomalib.data import InferenceBatch, MVTecAD
from anomalib.engine import Engine
from lightning.pytorch import seed_everything
from torch import nn

from draem_plugin.benchmark import curves
from draem_plugin.benchmark.curves import (
    CURVE_COLUMNS,
    PeriodicTest,
    evaluate,
    good_train_flagged,
    read_curve,
)
from draem_plugin.benchmark.models import build_evaluator, build_model


def train(
    name: str, mvtec_root: Path, textures: Path, tmp_path: Path, every: int | None, plugin_args: dict | None = None
) -> tuple[Any, MVTecAD, list]:
    """Three epochs of ``name`` from seed 0, with or without the periodic test; the model, data and curve rows."""
    seed_everything(0)
    model = build_model(
        name,
        image_size=64,
        reconstructive_width=4,
        discriminative_width=4,
        source=textures,
        plugin_args=plugin_args,
        evaluator=False,
        visualizer=False,
    )
    datamodule = MVTecAD(
        root=mvtec_root, category="brick", train_batch_size=4, eval_batch_size=8, num_workers=0, seed=0
    )
    callbacks = (
        [PeriodicTest(every, tmp_path / "curve.csv", {"category": "brick", "model": name, "seed": 0})] if every else []
    )
    engine = Engine(
        accelerator="cpu",
        max_epochs=3,
        logger=False,
        enable_progress_bar=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        callbacks=callbacks,
        default_root_dir=tmp_path,
    )
    engine.fit(model, datamodule=datamodule)
    return model, datamodule, read_curve(tmp_path / "curve.csv")


@pytest.mark.parametrize("name", ["DraemPlugin", "Draem"])
def test_testing_every_epoch_leaves_training_bit_identical(
    name: str, mvtec_root: Path, textures: Path, tmp_path: Path
) -> None:
    """anomalib's Draem draws its anomalies from the global generators, DraemPlugin from its own: both unchanged."""
    plain = train(name, mvtec_root, textures, tmp_path / "plain", every=None)[0].model.state_dict()
    tested, _, curve = train(name, mvtec_root, textures, tmp_path / "tested", every=2)
    assert all(torch.equal(plain[key], tested.model.state_dict()[key]) for key in plain)
    assert [row["epoch"] for row in curve] == [2, 3]  # every 2nd epoch, and the last
    assert [row["images_seen"] for row in curve] == [16, 24]
    for row in curve:
        assert set(CURVE_COLUMNS) == row.keys() and 0.0 <= row["pixel_AUROC"] <= 1.0
        assert 0.0 <= row["good_train_flagged"] <= 1.0


def test_a_kept_network_average_is_what_is_tested(
    mvtec_root: Path, textures: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ``ema_decay`` the last test sees the average the run ends with, not the last weights."""
    tested: list[dict[str, torch.Tensor]] = []

    def recording(model: Any, datamodule: Any) -> dict[str, float]:
        tested.append({name: value.clone() for name, value in model.model.state_dict().items()})
        return evaluate(model, datamodule)

    plain = train("DraemPlugin", mvtec_root, textures, tmp_path / "plain", every=None)[0].model.state_dict()
    monkeypatch.setattr(curves, "evaluate", recording)
    averaged = train("DraemPlugin", mvtec_root, textures, tmp_path / "ema", 3, {"ema_decay": 0.5})[0]
    (seen,) = tested
    assert all(torch.equal(value, seen[name]) for name, value in averaged.model.state_dict().items())
    assert any(not torch.equal(value, seen[name]) for name, value in plain.items())


def test_evaluate_equals_anomalibs_metrics_on_raw_outputs(mvtec_root: Path, textures: Path) -> None:
    """With normalisation and thresholds off, anomalib's test gives the curve's numbers."""
    model = build_model(
        "DraemPlugin",
        image_size=64,
        reconstructive_width=4,
        discriminative_width=4,
        source=textures,
        evaluator=build_evaluator(["image_AUROC", "pixel_AUROC", "pixel_AUPR"]),
        visualizer=False,
    )
    model.post_processor = None
    datamodule = MVTecAD(root=mvtec_root, category="brick", eval_batch_size=8, num_workers=0)
    datamodule.setup("fit")
    ours = evaluate(model, datamodule)
    engine = Engine(accelerator="cpu", logger=False, enable_progress_bar=False)
    theirs = engine.test(model, datamodule=datamodule, verbose=False)[0]
    for name in ("image_AUROC", "pixel_AUROC", "pixel_AUPR"):
        assert ours[name] == pytest.approx(theirs[name], abs=1e-6), name


class ConstantMap(nn.Module):
    """A stand-in network: every pixel's anomaly probability is ``value``; counts the images it sees."""

    def __init__(self, value: float) -> None:
        super().__init__()
        self.value, self.images = value, 0

    def forward(self, image: torch.Tensor) -> InferenceBatch:
        self.images += len(image)
        anomaly_map = torch.full((len(image), 1, *image.shape[-2:]), self.value)
        return InferenceBatch(pred_score=anomaly_map.amax((1, 2, 3)), anomaly_map=anomaly_map)


@pytest.mark.parametrize(("value", "share"), [(0.7, 1.0), (0.3, 0.0), (0.5, 0.0)])
def test_good_train_flagged_is_the_share_of_pixels_above_one_half(
    value: float, share: float, mvtec_root: Path, textures: Path
) -> None:
    model = build_model("DraemPlugin", image_size=64, reconstructive_width=4, discriminative_width=4, source=textures)
    model.model = ConstantMap(value)
    datamodule = MVTecAD(root=mvtec_root, category="brick", num_workers=0)
    datamodule.setup("fit")
    assert good_train_flagged(model, datamodule.train_data, images=3) == share
    assert model.model.images == 3  # only the first three training images, and each once
    assert model.training  # training mode restored
    with pytest.raises(ValueError, match="at least one training image, got images=0 of"):
        good_train_flagged(model, datamodule.train_data, images=0)


def test_a_curve_file_of_an_older_version_is_rewritten_with_the_new_column(tmp_path: Path) -> None:
    path = tmp_path / "curve.csv"
    old = [c for c in CURVE_COLUMNS if c != "good_train_flagged"]
    values = {"category": "brick", "model": "DraemPlugin", "seed": 0, "epoch": 5, "images_seen": 40}
    values |= {"image_AUROC": 0.9, "pixel_AUROC": 0.8, "pixel_AP": 0.3}
    path.write_text(",".join(old) + "\n" + ",".join(str(values[c]) for c in old) + "\n", encoding="utf-8")
    PeriodicTest(5, path, {})._append(values | {"epoch": 10, "images_seen": 80, "good_train_flagged": 0.25})
    rows = read_curve(path)
    assert path.read_text(encoding="utf-8").splitlines()[0] == ",".join(CURVE_COLUMNS)
    assert [(r["epoch"], r["image_AUROC"]) for r in rows] == [(5, 0.9), (10, 0.9)]
    assert np.isnan(rows[0]["good_train_flagged"]) and rows[1]["good_train_flagged"] == 0.25
    PeriodicTest(5, path, {})._append(values | {"epoch": 15, "good_train_flagged": 0.0})
    assert [r["epoch"] for r in read_curve(path)] == [5, 10, 15]
