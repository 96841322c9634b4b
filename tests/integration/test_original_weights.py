"""The released weights from the command line: import, then ``anomalib test`` and ``export`` load the checkpoint."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from original_reference import OriginalDiscriminative, OriginalReconstructive, randomised, save_original
from support import shared_path
from workflow import data_args, export_torch, run_cli

BIN = Path(sys.executable).parent


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "ignore"}
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def released(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("released")
    reconstructive, discriminative = randomised(OriginalReconstructive(8), 1), randomised(OriginalDiscriminative(4), 2)
    return save_original(reconstructive, discriminative, folder, "brick")


@pytest.mark.slow
def test_import_then_anomalib_test_and_export(released: tuple[Path, Path], demo_root: Path, tmp_path: Path) -> None:
    checkpoint = tmp_path / "brick.ckpt"
    result = run(
        [
            str(BIN / "draem-import-original"),
            "--reconstructive",
            str(released[0]),
            "--discriminative",
            str(released[1]),
            "--output",
            str(checkpoint),
            "--image_size",
            "64",
        ],
        tmp_path,
    )
    assert f"wrote {checkpoint}" in result.stdout and checkpoint.is_file()
    tested = run_cli(
        [
            "test",
            "--model",
            "DraemPlugin",
            "--model.original_protocol",
            "true",
            "--ckpt_path",
            str(checkpoint),
            *data_args(demo_root),
            "--trainer.accelerator",
            "cpu",
            "--default_root_dir",
            str(tmp_path),
        ],
        cwd=tmp_path,
    )
    for metric in ("image_AUROC", "pixel_AUROC", "original_image_AUROC", "original_pixel_AP"):
        assert metric in tested.stdout
    exported = export_torch(checkpoint, tmp_path, cwd=tmp_path)
    loaded = torch.load(exported, map_location="cpu", weights_only=False)
    assert loaded["model"].model.reconstructive_subnetwork.encoder[0][0].out_channels == 8


@pytest.mark.slow
def test_reproduce_evaluates_every_category_with_weights(
    released: tuple[Path, Path], demo_root: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    result = run(
        [
            str(BIN / "draem-reproduce"),
            "--root",
            str(demo_root),
            "--original_weights",
            str(released[0].parent),
            "--image_size",
            "64",
            "--accelerator",
            "cpu",
            "--num_workers",
            "0",
            "--output_dir",
            str(out),
        ],
        tmp_path,
    )
    (row,) = json.loads((out / "original_weights.json").read_text())
    assert row["category"] == "brick" and row["seconds"] > 0
    assert 0 <= row["image_AUROC"] <= 100 and 0 <= row["pixel_AP"] <= 100
    assert row["paper_image_AUROC"] != row["paper_image_AUROC"]  # brick is no MVTec category: no paper figure (NaN)
    assert "| category | image_AUROC | paper_image_AUROC |" in result.stdout


@pytest.mark.slow
def test_reproduce_evaluates_the_real_mvtec_bottle_beside_the_paper(tmp_path: Path) -> None:
    root = shared_path("data", "mvtec_ad")
    weights = tmp_path / "weights"
    weights.mkdir()
    save_original(randomised(OriginalReconstructive(8), 1), randomised(OriginalDiscriminative(4), 2), weights, "bottle")
    out = tmp_path / "out"
    command = [str(BIN / "draem-reproduce"), "--root", str(root), "--original_weights", str(weights)]
    result = run([*command, "--accelerator", "cpu", "--num_workers", "0", "--output_dir", str(out)], tmp_path)
    (row,) = json.loads((out / "original_weights.json").read_text())
    assert row["category"] == "bottle" and row["test_images"] == 83
    assert (row["paper_image_AUROC"], row["paper_pixel_AUROC"], row["paper_pixel_AP"]) == (99.2, 99.1, 86.5)
    assert 0 <= row["pixel_AUROC"] <= 100
    assert "| bottle |" in result.stdout
    checkpoint = tmp_path / "bottle.ckpt"
    pair = sorted(str(path) for path in weights.iterdir())  # <run>_bottle_.pckl, <run>_bottle__seg.pckl
    run([str(BIN / "draem-import-original"), "--reconstructive", pair[0], "--discriminative", pair[1], "--output",
         str(checkpoint)], tmp_path)  # fmt: skip
    tested = run_cli(
        ["test", "--model", "DraemPlugin", "--ckpt_path", str(checkpoint), "--data", "MVTecAD", "--data.root",
         str(root), "--data.category", "bottle", "--data.num_workers", "0", "--trainer.accelerator", "cpu",
         "--default_root_dir", str(tmp_path / "cli")],
        cwd=tmp_path,
    )  # fmt: skip
    assert "image_AUROC" in tested.stdout and "pixel_AUROC" in tested.stdout
