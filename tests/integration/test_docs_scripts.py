"""The measurement scripts under docs/ run on a tiny MVTec-layout set and print what docs/benchmarks.md quotes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from anomalib.data import MVTecAD
from support import REPO

from draem_plugin.benchmark.curves import evaluate
from draem_plugin.benchmark.models import build_model


def measure_maps(args: list[str]) -> subprocess.CompletedProcess:
    """Run ``docs/measure_maps.py`` with ``args``; its exit status and output."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    script = str(REPO / "docs" / "measure_maps.py")
    return subprocess.run(
        [sys.executable, script, *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )


def test_measure_maps_prints_filters_and_defect_types(mvtec_root: Path, textures: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build_model("DraemPlugin", image_size=64, reconstructive_width=4, discriminative_width=4, visualizer=False)
    checkpoint = tmp_path / "last.ckpt"
    torch.save({"state_dict": model.state_dict(), "epoch": 2}, checkpoint)
    args = ["--root", str(mvtec_root), "--category", "brick", "--image_size", "64"]
    args += ["--reconstructive_width", "4", "--discriminative_width", "4", "--source", str(textures)]
    result = measure_maps([str(checkpoint), *args])
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    datamodule = MVTecAD(root=mvtec_root, category="brick", eval_batch_size=16, num_workers=0)
    datamodule.setup("test")
    expected = evaluate(model, datamodule)["pixel_AUROC"]
    pixel = float(re.search(r"after epoch 3, brick: pixel AUROC ([0-9.]+)", out).group(1))
    assert abs(pixel - expected) < 1e-3
    assert len(re.findall(r"filter \d+: [01]\.\d{4}", out)) == 7
    kinds = sorted(p.name for p in (mvtec_root / "brick" / "test").iterdir() if p.name != "good")
    assert re.findall(r"^(\w+): 2 images, its defect pixels", out, re.MULTILINE) == kinds


@pytest.mark.parametrize("name", ["DraemPlugin", "Draem"])
def test_measure_maps_recalibrates_batchnorm_on_augmented_training_batches(
    name: str, mvtec_root: Path, textures: Path, tmp_path: Path
) -> None:
    torch.manual_seed(0)
    model = build_model(
        name, image_size=64, reconstructive_width=4, discriminative_width=4, source=textures, visualizer=False
    )
    checkpoint = tmp_path / "last.ckpt"
    torch.save({"state_dict": model.state_dict(), "epoch": 0}, checkpoint)
    args = [str(checkpoint), "--root", str(mvtec_root), "--category", "brick", "--image_size", "64", "--model", name]
    args += ["--reconstructive_width", "4", "--discriminative_width", "4", "--source", str(textures)]
    plain, recalibrated = measure_maps(args), measure_maps([*args, "--recalibrate_bn", "3"])
    assert plain.returncode == 0, plain.stderr[-3000:]
    assert recalibrated.returncode == 0, recalibrated.stderr[-3000:]
    assert "BatchNorm statistics" not in plain.stdout
    change = re.search(
        r"recomputed over 3 augmented training batches \(mean \|change\| .*: ([0-9.e-]+)\)", recalibrated.stdout
    )
    assert float(change.group(1)) > 0  # the untrained networks hold BatchNorm's initial statistics (0 and 1)
    pixel = [float(re.search(r"pixel AUROC ([0-9.]+)", r.stdout).group(1)) for r in (plain, recalibrated)]
    assert pixel[0] != pixel[1]


def test_measure_maps_refuses_a_checkpoint_without_the_networks(mvtec_root: Path, tmp_path: Path) -> None:
    checkpoint = tmp_path / "other.ckpt"
    torch.save({"state_dict": {"model.unrelated": torch.zeros(1)}, "epoch": 0}, checkpoint)
    args = [str(checkpoint), "--root", str(mvtec_root), "--category", "brick", "--image_size", "64"]
    result = measure_maps(args)
    assert result.returncode == 1
    assert "network weights of DraemPlugin" in result.stderr
    assert "pass the run's --model" in result.stderr
