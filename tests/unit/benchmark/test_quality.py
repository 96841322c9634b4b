"""draem-bench quality: tables, learning curves, and runs that resume instead of starting over."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from anomalib.engine import Engine
from support import BACKBONE

from draem_plugin.benchmark.curves import CURVE_COLUMNS, PeriodicTest
from draem_plugin.benchmark.quality import CSV_COLUMNS, Quality


def settings(mvtec_root: Path, textures: Path, out: Path, **overrides: object) -> Quality:
    base = {
        "root": str(mvtec_root),
        "category": "brick",
        "models": ["DraemPlugin", "Draem"],
        "epochs": 2,
        "image_size": 64,
        "reconstructive_width": 4,
        "discriminative_width": 4,
        "source": str(textures),
        "batch_size": 4,
        "eval_batch_size": 8,
        "out_dir": str(out),
    }
    return Quality(**{**base, **overrides})


def read(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as file:
        return list(csv.DictReader(file))


def test_tables_curves_and_chart(
    tmp_path: Path, textures: Path, mvtec_root: Path, backbone_available: bool, request: pytest.FixtureRequest
) -> None:
    models = ["DraemPlugin", "Draem"]  # PatchCore and PaDiM too where ../shared has their offline backbone
    extra = {}
    if backbone_available:
        request.getfixturevalue("offline_backbone")
        models += ["Patchcore", "Padim"]
        extra = {"backbone": BACKBONE}
    out = tmp_path / "quality"
    rows = settings(mvtec_root, textures, out, models=models, eval_every=1, seed=[0, 1], **extra).measure()
    expected = [(m, s) for s in (0, 1) for m in models if m in ("DraemPlugin", "Draem") or s == 0]
    assert [(row["model"], row["seed"]) for row in rows] == expected
    table = read(out / "quality.csv")
    assert tuple(table[0]) == CSV_COLUMNS and len(table) == len(expected)
    for row in table:
        for column in ("image_AUROC", "pixel_AUROC", "pixel_AP", "pixel_AUPRO"):
            assert 0.0 <= float(row[column]) <= 1.0, (row["model"], column, row[column])
        assert int(row["test_images"]) == 4 + 4 * 2  # 4 good + 2 of each of the 4 defect types
    assert "| " + " | ".join(Quality.COLUMNS) + " |" in (out / "quality.md").read_text(encoding="utf-8")
    curves = read(out / "learning_curves.csv")
    assert tuple(curves[0]) == CURVE_COLUMNS
    assert sorted((r["model"], r["seed"], r["epoch"]) for r in curves) == sorted(
        (m, str(s), str(e)) for m in ("DraemPlugin", "Draem") for s in (0, 1) for e in (1, 2)
    )
    for name in ("quality.png", "learning_curves.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_an_interrupted_run_resumes_and_a_finished_one_is_reused(
    tmp_path: Path, textures: Path, mvtec_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "quality"
    original_test = PeriodicTest.on_train_epoch_end

    def killed_after_epoch_2(self: PeriodicTest, trainer: object, module: object) -> None:
        original_test(self, trainer, module)
        if trainer.current_epoch == 1:
            raise KeyboardInterrupt  # as if the machine went down after epoch 2's evaluation, before its checkpoint

    monkeypatch.setattr(PeriodicTest, "on_train_epoch_end", killed_after_epoch_2)
    with pytest.raises((KeyboardInterrupt, SystemExit)):
        settings(mvtec_root, textures, out, models=["DraemPlugin"], epochs=3, eval_every=1).measure()
    monkeypatch.setattr(PeriodicTest, "on_train_epoch_end", original_test)
    run = out / "runs" / "brick" / "DraemPlugin" / "seed0"
    assert (run / "checkpoints" / "last.ckpt").is_file() and not (run / "result.json").exists()
    resumed_from: list[object] = []
    original_fit = Engine.fit

    def recording_fit(self: Engine, *args: object, **kwargs: object) -> object:
        resumed_from.append(kwargs.get("ckpt_path"))
        return original_fit(self, *args, **kwargs)

    monkeypatch.setattr(Engine, "fit", recording_fit)
    (row,) = settings(mvtec_root, textures, out, models=["DraemPlugin"], epochs=3, eval_every=1).measure()
    assert resumed_from == [run / "checkpoints" / "last.ckpt"]
    assert [r["epoch"] for r in read(run / "curve.csv")] == ["1", "2", "3"]  # no evaluation measured twice
    assert 0.0 <= row["image_AUROC"] <= 1.0
    resumed_from.clear()
    settings(mvtec_root, textures, out, models=["DraemPlugin"], epochs=3, eval_every=1).measure()
    assert resumed_from == []  # finished: reused, not trained again
    with pytest.raises(ValueError, match=r"holds a run made with other settings \(epochs 3 -> 4\)"):
        settings(mvtec_root, textures, out, models=["DraemPlugin"], eval_every=1, epochs=4).measure()
