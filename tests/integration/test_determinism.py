"""Same seed, same result, end to end: README command 1 run twice gives the same metrics (on the CPU, same threads).

anomalib 2.7's command line accepts ``seed_everything`` but never applies it, so before DraemPlugin took a ``seed``
two runs of the demo drew different initial weights (pixel AUROC 0.896 and 0.939 were seen). The demo config sets
``model.init_args.seed``, which seeds the initialisation, the augmenter and the cached images' order.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from support import REPO
from workflow import export_torch, logged_test_metrics, run_cli

#: The demo config, shrunk: 2 epochs on 16 training images at 64 px (its seed, widths and schedule kept). The config
#: validates only after its last epoch (check_val_every_n_epoch is its max_epochs), so 2 epochs never validate on
#: the schedule: FinalValidation must, or there would be no thresholds and no model.ckpt to export.
SMALL = [
    "--trainer.max_epochs",
    "2",
    "--model.image_size",
    "[64,64]",
    "--data.image_size",
    "64",
    "--data.num_train",
    "16",
    "--data.num_test_good",
    "4",
    "--data.num_test_defect",
    "2",
    "--trainer.enable_progress_bar",
    "false",
]


@pytest.mark.slow
def test_two_runs_of_the_demo_config_give_the_same_metrics(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    metrics = []
    for run in ("first", "second"):
        out = tmp_path / run
        run_cli(
            [
                "train",
                "--config",
                str(REPO / "configs" / "draem_plugin_demo.yaml"),
                *SMALL,
                "--data.root",
                str(tmp_path / "data"),
                "--default_root_dir",
                str(out),
                "--trainer.logger",
                "lightning.pytorch.loggers.CSVLogger",
                "--trainer.logger.save_dir",
                str(out / "logs"),
            ],
            cwd=tmp_path,
        )
        metrics.append(logged_test_metrics(out))
    assert metrics[0].keys() == metrics[1].keys() >= {"image_AUROC", "pixel_AUROC", "pixel_AUPR"}
    for name, value in metrics[0].items():
        assert metrics[1][name] == pytest.approx(value, abs=1e-6), name
    # A run that ended off the validation schedule still leaves a checkpoint, with thresholds, that exports.
    (checkpoint,) = {path.resolve() for path in (tmp_path / "first").rglob("weights/lightning/model.ckpt")}
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    assert torch.isfinite(state["post_processor._image_threshold"])
    exported = export_torch(checkpoint, tmp_path / "export", cwd=tmp_path)
    assert exported.is_file()
