"""The real `anomalib` command finds DraemPlugin (bare name, dotted path, YAML) after `pip install`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from support import REPO
from workflow import data_args

BIN = Path(sys.executable).parent


def run(args: list[str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "ignore"}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)


def tiny_args(demo_root: Path, out: Path) -> list[str]:
    """Tiny DraemPlugin widths and sizes on the tiny SurfaceDemo, CPU, no progress bar, results under ``out``."""
    model = ["--model.reconstructive_width", "4", "--model.discriminative_width", "4", "--model.image_size", "[64,64]"]
    trainer = ["--trainer.accelerator", "cpu", "--trainer.enable_progress_bar", "false", "--default_root_dir", str(out)]
    return [*model, "--model.score_filter_size", "7", *data_args(demo_root), *trainer]


def test_plain_python_does_not_import_the_plugin_or_torch(tmp_path: Path) -> None:
    code = "import sys; print(json.dumps(['torch' in sys.modules, 'draem_plugin' in sys.modules]))"
    result = run([sys.executable, "-c", "import json; " + code], tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == [False, False]


def test_importing_anomalib_models_registers_the_plugin(tmp_path: Path) -> None:
    code = (
        "import sys, anomalib.models as m; "
        "print('draem_plugin' in sys.modules, 'DraemPlugin' in m.list_models('pascal'), "
        "type(m.get_model('DraemPlugin', reconstructive_width=4, discriminative_width=4)).__name__)"
    )
    result = run([sys.executable, "-c", code], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "True True DraemPlugin"


def test_autoload_can_be_switched_off(tmp_path: Path) -> None:
    code = "import sys, anomalib.models; print('draem_plugin' in sys.modules)"
    env_run = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env={**os.environ, "DRAEM_PLUGIN_AUTOLOAD": "0", "PYTHONWARNINGS": "ignore"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert env_run.stdout.strip().splitlines()[-1] == "False"


@pytest.mark.slow
def test_anomalib_train_with_the_bare_model_name(demo_root: Path, tmp_path: Path) -> None:
    result = run(
        [
            str(BIN / "anomalib"),
            "train",
            "--model",
            "DraemPlugin",
            *tiny_args(demo_root, tmp_path),
            "--trainer.max_epochs",
            "1",
        ],
        tmp_path,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    output = result.stdout + result.stderr
    for metric in ("image_AUROC", "image_F1Score", "pixel_AUROC", "pixel_AUPR", "pixel_AUPRO"):
        assert metric in output
    checkpoints = list(tmp_path.rglob("*.ckpt"))
    images = list(tmp_path.rglob("images/**/*.png"))
    assert checkpoints, "no checkpoint written"
    assert images, "no anomaly-map images written"


@pytest.mark.slow
def test_anomalib_fit_with_the_dotted_class_path(demo_root: Path, tmp_path: Path) -> None:
    result = run(
        [
            str(BIN / "anomalib"),
            "fit",
            "--model",
            "draem_plugin.DraemPlugin",
            *tiny_args(demo_root, tmp_path),
            "--trainer.fast_dev_run",
            "true",
        ],
        tmp_path,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


@pytest.mark.slow
def test_anomalib_fit_with_a_yaml_config(demo_root: Path, tmp_path: Path) -> None:
    config = tmp_path / "draem.yaml"
    config.write_text(
        "model:\n"
        "  class_path: DraemPlugin\n"
        "  init_args: {reconstructive_width: 4, discriminative_width: 4, image_size: [64, 64], score_filter_size: 7,"
        " lr: 0.0002}\n"
        "data:\n"
        "  class_path: SurfaceDemo\n"
        f"  init_args: {{root: {demo_root}, image_size: 64, num_train: 8, num_test_good: 4, num_test_defect: 2,"
        " train_batch_size: 4, num_workers: 0}\n"
        "trainer: {accelerator: cpu, fast_dev_run: true}\n"
    )
    printed = run([str(BIN / "anomalib"), "fit", "--config", str(config), "--print_config"], tmp_path)
    assert printed.returncode == 0, printed.stderr[-3000:]
    assert "class_path: draem_plugin.DraemPlugin" in printed.stdout
    assert "lr: 0.0002" in printed.stdout
    result = run([str(BIN / "anomalib"), "fit", "--config", str(config), "--default_root_dir", str(tmp_path)], tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["draem_plugin.yaml", "draem_plugin_cpu.yaml", "draem_plugin_demo.yaml"])
def test_every_shipped_config_parses_with_its_stated_settings(name: str, tmp_path: Path) -> None:
    path = REPO / "configs" / name
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    printed = run([str(BIN / "anomalib"), "train", "--config", str(path), "--print_config"], tmp_path)
    assert printed.returncode == 0, printed.stderr[-3000:]
    parsed = yaml.safe_load(printed.stdout[printed.stdout.index("seed_everything") :])
    assert parsed["model"]["class_path"] == "draem_plugin.DraemPlugin"
    for key, value in config["model"]["init_args"].items():
        assert parsed["model"]["init_args"][key] == value, key
    assert parsed["trainer"]["max_epochs"] == config["trainer"]["max_epochs"]
