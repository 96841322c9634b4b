"""draem-bench quality: tables, learning curves, and runs that resume instead of starting over."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from anomalib.engine import Engine
from support import BACKBONE

from draem_plugin.benchmark.curves import CURVE_COLUMNS
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
    first = settings(mvtec_root, textures, out, models=["DraemPlugin"], eval_every=1).measure()
    run = out / "runs" / "brick" / "DraemPlugin" / "seed0"
    (run / "result.json").unlink()  # as if the process had been killed before the test
    epochs_resumed: list[bool] = []
    original = Engine.fit

    def recording_fit(self: Engine, *args: object, **kwargs: object) -> object:
        epochs_resumed.append(kwargs.get("ckpt_path") is not None)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Engine, "fit", recording_fit)
    again = settings(mvtec_root, textures, out, models=["DraemPlugin"], eval_every=1).measure()
    assert epochs_resumed == [True]
    assert [r["epoch"] for r in read(run / "curve.csv")] == ["1", "2"]  # no evaluation measured twice
    assert again[0]["image_AUROC"] == pytest.approx(first[0]["image_AUROC"], abs=1e-6)
    epochs_resumed.clear()
    settings(mvtec_root, textures, out, models=["DraemPlugin"], eval_every=1).measure()
    assert epochs_resumed == []  # finished: reused, not trained again
    with pytest.raises(ValueError, match=r"holds a run made with other settings \(epochs 2 -> 3\)"):
        settings(mvtec_root, textures, out, models=["DraemPlugin"], eval_every=1, epochs=3).measure()
