"""``draem-bench`` runs end to end on tiny settings and writes result files with the documented columns.

No timed assertions: the numbers only have to exist and be finite where they are measured.
"""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from draem_plugin.benchmark import augment, infer, pipeline, quality, train_step
from draem_plugin.benchmark.cli import main

BACKBONE = "resnet18.tv_in1k"  # the offline backbone of ../shared/weights (never layer4)
TINY = ["--image_size", "64", "--warmup", "1", "--rounds", "1", "--iters", "1"]
WIDTHS = ["--reconstructive_width", "4", "--discriminative_width", "4"]


def run_cli(args: list[str]) -> None:
    """Run ``draem-bench ARGS`` in this process; fail on a non-zero exit."""
    try:
        main(args)
    except SystemExit as exit_:
        assert exit_.code in (0, None), f"draem-bench {' '.join(args)} exited with {exit_.code}"


def rows_of(path: Path, benchmark: str) -> list[dict]:
    payload = json.loads(path.read_text(encoding="utf-8"))
    assert payload["benchmark"] == benchmark
    assert {"command", "machine", "settings", "rows"} <= payload.keys()
    assert payload["machine"]["cpu_count"] >= 1
    assert payload["rows"], "no result rows"
    return payload["rows"]


def test_help_lists_the_subcommands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for name in ("augment", "train-step", "infer", "quality", "pipeline"):
        assert name in out


def test_augment_compares_both_augmenters(tmp_path: Path, textures: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "augment.json"
    run_cli(["augment", "--source", str(textures), "--batch_size", "[2,4]", *TINY, "--json", str(out)])
    rows = rows_of(out, "augment")
    assert [row["batch_size"] for row in rows] == [2, 4]
    for row in rows:
        assert set(augment.COLUMNS) <= row.keys()
        assert row["device"] == "cpu" and row["image_size"] == 64
        assert row["source_images_plugin"] == row["source_images_anomalib"] == 4  # both draw the same real textures
        assert row["ratio"] == pytest.approx(row["plugin_images_per_s"] / row["anomalib_images_per_s"])
        assert all(math.isfinite(row[key]) and row[key] > 0 for key in ("plugin_images_per_s", "anomalib_images_per_s"))
    assert "ratio" in capsys.readouterr().out


@pytest.mark.parametrize(("precision", "channels_last"), [("fp32", "false"), ("bf16-mixed", "true")])
def test_train_step_compares_both_draems(tmp_path: Path, textures: Path, precision: str, channels_last: str) -> None:
    out = tmp_path / "train_step.json"
    run_cli(["train-step", "--source", str(textures), "--batch_size", "2", *TINY, *WIDTHS,
             "--precision", precision, "--channels_last", channels_last, "--json", str(out)])  # fmt: skip
    (row,) = rows_of(out, "train-step")
    assert set(train_step.COLUMNS) <= row.keys()
    assert row["precision"] == precision and row["channels_last"] == (channels_last == "true")
    assert row["widths"] == "4/4"
    assert row["plugin_params"] == row["anomalib_params"]  # equal widths: the same architecture size
    assert row["ratio"] == pytest.approx(row["plugin_images_per_s"] / row["anomalib_images_per_s"])
    assert row["plugin_peak_mem_mib"] >= 0 and row["anomalib_peak_mem_mib"] >= 0
    assert "4/4" in row["anomalib_widths_note"]


def test_infer_times_both_draems_without_shared(tmp_path: Path, textures: Path) -> None:
    out = tmp_path / "infer.json"
    run_cli(["infer", "--models", "[DraemPlugin,Draem]", "--source", str(textures), "--batch_size", "2", *TINY,
             *WIDTHS, "--json", str(out)])  # fmt: skip
    rows = rows_of(out, "infer")
    assert [row["model"] for row in rows] == ["DraemPlugin", "Draem"]
    for row in rows:
        assert set(infer.COLUMNS) <= row.keys()
        assert row["images_per_s"] > 0 and row["latency_ms_p90"] >= row["latency_ms_p50"] > 0
    assert rows[0]["ratio"] == pytest.approx(1.0)


@pytest.mark.shared
def test_infer_times_all_four_models(tmp_path: Path, textures: Path, offline_backbone: Path) -> None:
    out = tmp_path / "infer.json"
    run_cli(["infer", "--source", str(textures), "--backbone", BACKBONE, "--batch_size", "2", "--fit_images", "4",
             *TINY, *WIDTHS, "--json", str(out)])  # fmt: skip
    rows = rows_of(out, "infer")
    assert [row["model"] for row in rows] == ["DraemPlugin", "Draem", "Patchcore", "Padim"]
    assert "memory bank" in rows[2]["details"] and BACKBONE in rows[2]["details"]
    assert all(row["images_per_s"] > 0 for row in rows)


def test_quality_writes_csv_markdown_and_chart(
    tmp_path: Path, textures: Path, mvtec_root: Path, backbone_available: bool, request: pytest.FixtureRequest
) -> None:
    models = ["DraemPlugin", "Draem"]  # PatchCore and PaDiM too where ../shared has their offline backbone
    extra: list[str] = []
    if backbone_available:
        request.getfixturevalue("offline_backbone")
        models += ["Patchcore", "Padim"]
        extra = ["--backbone", BACKBONE]
    out_dir = tmp_path / "quality"
    run_cli(["quality", "--root", str(mvtec_root), "--category", "brick", "--models", f"[{','.join(models)}]",
             "--epochs", "1", "--image_size", "64", *WIDTHS, "--source", str(textures), "--batch_size", "4",
             "--eval_batch_size", "8", "--out_dir", str(out_dir), "--json", str(tmp_path / "quality.json"),
             *extra])  # fmt: skip
    with (out_dir / "quality.csv").open(encoding="utf-8") as file:
        reader = csv.DictReader(file)
        assert tuple(reader.fieldnames or ()) == quality.CSV_COLUMNS
        rows = list(reader)
    assert [row["model"] for row in rows] == models
    for row in rows:
        assert row["category"] == "brick"
        for column in ("image_AUROC", "pixel_AUROC", "pixel_AP", "pixel_AUPRO"):
            assert 0.0 <= float(row[column]) <= 1.0, (row["model"], column, row[column])
        assert float(row["fit_s"]) > 0 and float(row["test_s"]) > 0 and float(row["test_images_per_s"]) > 0
        assert int(row["test_images"]) == 4 + 4 * 2  # 4 good + 2 of each of the 4 defect types
    table = (out_dir / "quality.md").read_text(encoding="utf-8")
    assert "| " + " | ".join(quality.COLUMNS) + " |" in table
    assert (out_dir / "quality.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(rows_of(tmp_path / "quality.json", "quality")) == len(models)


def test_pipeline_compares_cached_and_uncached_training(tmp_path: Path, textures: Path, mvtec_root: Path) -> None:
    out = tmp_path / "pipeline.json"
    run_cli(["pipeline", "--root", str(mvtec_root), "--category", "brick", "--source", str(textures), "--epochs", "2",
             "--batch_size", "4", "--image_size", "64", *WIDTHS, "--num_workers", "0", "--json", str(out)])  # fmt: skip
    rows = rows_of(out, "pipeline")
    assert [row["cache_train_images"] for row in rows] == [True, False]
    for row in rows:
        assert set(pipeline.COLUMNS) <= row.keys()
        assert row["train_images_per_s"] > 0 and row["network_images_per_s"] > 0
        assert 0.0 <= row["share_outside_networks"] < 1.0
    assert rows[1]["ratio"] == 1.0
    assert rows[0]["ratio"] == pytest.approx(rows[0]["train_images_per_s"] / rows[1]["train_images_per_s"])


def test_cuda_without_a_gpu_fails_clearly(textures: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(SystemExit) as exit_:
        main(["augment", "--device", "cuda", "--source", str(textures), *TINY])
    assert exit_.value.code == 1
    assert "torch.cuda.is_available() is False" in capsys.readouterr().err


@pytest.mark.shared
def test_console_script_runs_offline_with_hf_home(tmp_path: Path, backbone_home: Path) -> None:
    home = backbone_home
    script = Path(sys.executable).parent / "draem-bench"
    if not script.exists():
        pytest.skip("the draem-bench console script is not installed (pip install -e .)")
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HOME", "HF_HUB_OFFLINE", "HF_HUB_CACHE")}
    env["PYTHONWARNINGS"] = "ignore"
    out = tmp_path / "infer.json"
    result = subprocess.run(
        [str(script), "infer", "--models", "[Patchcore,Padim]", "--backbone", BACKBONE, "--hf_home", str(home),
         "--batch_size", "2", "--fit_images", "2", *TINY, "--json", str(out)],  # fmt: skip
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600, check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert [row["model"] for row in rows_of(out, "infer")] == ["Patchcore", "Padim"]
    assert "| model |" in result.stdout
