"""``anomalib benchmark --config configs/benchmark/draem_vs_patchcore_padim.yaml`` runs, saves, and fails loudly.

The real ``anomalib`` command runs in a subprocess on the shipped config, shrunk to tiny settings. The plugin's
fixes to anomalib 2.7's pipeline (:mod:`draem_plugin.benchmark.anomalib_patch`) must be in force there: the ``.pth``
hook applies them once anomalib's benchmark pipeline module is loaded.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "configs" / "benchmark" / "draem_vs_patchcore_padim.yaml"
ANOMALIB = Path(sys.executable).parent / "anomalib"
NOT_PATCHED_HINT = (
    "anomalib's benchmark pipeline was not patched in the subprocess: the .pth hook (_draem_plugin_autoload) must "
    "call draem_plugin.benchmark.anomalib_patch.apply() once anomalib.pipelines.benchmark is loaded."
)


def run_anomalib_benchmark(config: dict, cwd: Path, hf_home: Path | None) -> subprocess.CompletedProcess:
    path = cwd / "benchmark.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "HF_HUB_OFFLINE": "1", "COLUMNS": "200"}
    if hf_home is not None:
        env["HF_HOME"] = str(hf_home)
    if not ANOMALIB.exists():
        pytest.skip(f"no anomalib command at {ANOMALIB}")
    return subprocess.run(
        [str(ANOMALIB), "benchmark", "--config", str(path)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def tiny_config(mvtec_root: Path, textures: Path, with_backbone: bool) -> dict:
    """The shipped config on the tiny dataset: 1 epoch, DraemPlugin at widths 4 and 64 px."""
    config = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    bench = config["benchmark"]
    bench["trainer"]["max_epochs"] = 1
    bench["image_size"] = 64
    bench["data"]["init_args"].update(
        {"root": str(mvtec_root), "category": {"grid": ["brick"]}, "train_batch_size": 4, "eval_batch_size": 8},
    )
    grid = bench["model"]["grid"]
    (draem,) = [entry for entry in grid if entry["class_path"] == "DraemPlugin"]
    draem["init_args"].update(
        {
            "anomaly_source_path": str(textures),
            "reconstructive_width": 4,
            "discriminative_width": 4,
            "image_size": 64,
            "score_filter_size": 7,
        },
    )
    if not with_backbone:  # PatchCore / PaDiM need ../shared's backbone; keep rows that differ in keys anyway
        bench["model"]["grid"] = [draem, {"class_path": "DraemPlugin", "init_args": {**draem["init_args"], "seed": 3}}]
        del bench["model"]["grid"][1]["init_args"]["anomaly_source_path"]
    return config


def test_shipped_config_is_a_grid_of_draem_plugin_patchcore_and_padim() -> None:
    config = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    models = [entry["class_path"] for entry in config["benchmark"]["model"]["grid"]]
    assert models == ["DraemPlugin", "Patchcore", "Padim"]
    assert config["accelerator"] in ("cpu", "cuda", ["cpu"], ["cuda"])


def test_anomalib_benchmark_runs_the_shipped_grid(
    tmp_path: Path, mvtec_root: Path, textures: Path, backbone_available: bool
) -> None:
    hf_home = Path(__file__).resolve().parents[2].parent / "shared" / "weights" / "hf_home"
    config = tiny_config(mvtec_root, textures, backbone_available)
    result = run_anomalib_benchmark(config, tmp_path, hf_home if backbone_available else None)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    saved = list((tmp_path / "runs" / "benchmark").glob("*/results.csv"))
    assert len(saved) == 1, NOT_PATCHED_HINT + "\n" + result.stdout[-2000:]
    with saved[0].open(encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    expected = [entry["class_path"] for entry in config["benchmark"]["model"]["grid"]]
    assert [row["model.class_path"] for row in rows] == expected
    for row in rows:
        assert row["data.init_args.category"] == "brick"
        for metric in config["benchmark"]["metrics"]:  # every model reports the same metrics
            assert 0.0 <= float(row[metric]) <= 1.0, (row["model.class_path"], metric, row[metric])
        assert float(row["fit_duration"]) > 0
        assert row["image_size"] == "64"
    assert "Saved benchmark results" in result.stdout


def test_anomalib_benchmark_fails_loudly_when_a_job_fails(tmp_path: Path, mvtec_root: Path, textures: Path) -> None:
    config = tiny_config(mvtec_root, textures, with_backbone=False)
    config["benchmark"]["model"]["grid"] = [
        # image_size 65 is not a multiple of 32: DraemPlugin refuses it at construction.
        {"class_path": "DraemPlugin", "init_args": {"reconstructive_width": 4, "image_size": 65}},
    ]
    result = run_anomalib_benchmark(config, tmp_path, None)
    assert result.returncode != 0, NOT_PATCHED_HINT + "\n" + result.stdout[-2000:] + result.stderr[-2000:]
    assert "anomalib benchmark failed: 1 job(s)" in result.stderr
    assert "DraemPlugin on MVTecAD(brick)" in result.stderr
    assert "image_size must be" in result.stderr
