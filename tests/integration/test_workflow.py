"""anomalib's workflow with a DraemPlugin checkpoint: `predict`, `test`, `validate`, resuming `fit` (CLI, subprocess).

All commands name the model by its bare name and give no model arguments but the checkpoint (and, for `fit`, the
run's own arguments), as a user does after `anomalib train`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from workflow import (
    LR,
    RNG_KEY,
    TrainedRun,
    callback_args,
    data_args,
    frame_files,
    load_checkpoint,
    logged_rows,
    logged_test_metrics,
    logged_validation_metrics,
    model_args,
    run_cli,
    trainer_args,
)

TEST_METRICS = {"image_AUROC", "image_F1Score", "pixel_AUROC", "pixel_AUPR", "pixel_AUPRO"}
VALIDATION_METRICS = {"image_AUROC", "pixel_AUROC"}
STEPS_PER_EPOCH = 2  # 8 training images in batches of 4
PANEL = 256  # ImageVisualizer's default field size


@pytest.mark.slow
def test_predict_on_a_folder_writes_an_anomaly_map_overlay_per_image(
    trained_run: TrainedRun, frames: Path, tmp_path: Path
) -> None:
    """anomalib 2.7's CLI takes the folder as ``--data`` (it has no ``--data_path``; ``Engine.predict(data_path=)``
    is the Python form, used by the ``lightning_predictions`` fixture)."""
    run_cli(
        [
            "predict",
            "--model",
            "DraemPlugin",
            "--ckpt_path",
            str(trained_run.last),
            "--data",
            str(frames),
            "--trainer.accelerator",
            "cpu",
            "--trainer.enable_progress_bar",
            "false",
            "--default_root_dir",
            str(tmp_path),
        ],
        cwd=tmp_path,
    )
    (images,) = [path for path in tmp_path.rglob("images") if path.is_dir()]
    written = sorted(path.relative_to(images) for path in images.rglob("*.png"))
    assert written == [path.relative_to(frames) for path in frame_files(frames)]
    for name in written:
        with Image.open(images / name) as file:
            file.verify()
        with Image.open(images / name) as file:
            # anomalib's ImageVisualizer: image | image + anomaly map | image + predicted mask, 256x256 each
            assert file.size == (3 * PANEL, PANEL)
            panels = np.asarray(file.convert("RGB"), dtype=float).reshape(PANEL, 3, PANEL, 3)
        image, overlay = panels[:, 0], panels[:, 1]
        assert overlay.std() > 5, f"{name}: blank anomaly-map panel"
        assert np.abs(overlay - image).mean() > 10, f"{name}: the anomaly map is not drawn over the image"


@pytest.mark.slow
@pytest.mark.parametrize("subcommand", ["test", "validate"])
def test_test_and_validate_from_the_checkpoint_reproduce_the_training_run(
    trained_run: TrainedRun, subcommand: str, tmp_path: Path
) -> None:
    """`anomalib test|validate --ckpt_path last.ckpt` give the metrics `anomalib train` logged with those weights."""
    run_cli(
        [
            subcommand,
            "--model",
            "DraemPlugin",
            "--ckpt_path",
            str(trained_run.last),
            *data_args(trained_run.demo_root),
            *trainer_args(tmp_path),
        ],
        cwd=tmp_path,
    )
    if subcommand == "test":
        expected, actual, names = logged_test_metrics(trained_run.out), logged_test_metrics(tmp_path), TEST_METRICS
    else:  # the run's last validation, after its last epoch, used the weights of last.ckpt
        expected, (actual,) = logged_validation_metrics(trained_run.out)[-1], logged_validation_metrics(tmp_path)
        names = VALIDATION_METRICS
    assert set(expected) == set(actual) == names
    assert actual == pytest.approx(expected, abs=1e-6)


@pytest.mark.slow
def test_fit_from_a_checkpoint_continues_the_lr_schedule_and_the_augmenter_stream(
    trained_run: TrainedRun, tmp_path: Path
) -> None:
    """Resume after epoch 2 of 4 and end where the uninterrupted run ended.

    With ``max_epochs`` 4 the milestones (80 %, 90 %) fall after epochs 3 and 4: epochs 0-3 train at LR 0.01, 0.01,
    0.01, 0.002 and the schedule ends at 0.0004. A schedule restarted at the resume would train epoch 3 at 0.01 and end
    at 0.01. The augmenter's random state advances the same way whatever the images, so the resumed run ends in the
    uninterrupted run's final state; a stream restarted from the seed would end in the state of the resume point
    instead (two epochs of draws from the seed).
    """
    resume_point = trained_run.after_epoch(1)  # saved after epochs 0 and 1
    checkpoints = tmp_path / "checkpoints"
    run_cli(
        [
            "fit",
            *model_args(),
            *data_args(trained_run.demo_root),
            *trainer_args(tmp_path),
            *callback_args(checkpoints),
            "--ckpt_path",
            str(resume_point),
        ],
        cwd=tmp_path,
    )

    def epoch_lrs(out: Path) -> dict[int, float]:  # LearningRateMonitor logs at the first step of each epoch
        return {int(row["step"]) // STEPS_PER_EPOCH: row["lr-Adam"] for row in logged_rows(out) if "lr-Adam" in row}

    schedule = [LR, LR, LR, LR * 0.2]
    assert epoch_lrs(trained_run.out) == pytest.approx(dict(enumerate(schedule)))
    assert epoch_lrs(tmp_path) == pytest.approx({2: schedule[2], 3: schedule[3]})  # only epochs 2 and 3 ran
    assert sorted(path.name for path in checkpoints.glob("epoch=*.ckpt")) == ["epoch=2.ckpt", "epoch=3.ckpt"]

    paths = (resume_point, trained_run.last, checkpoints / "last.ckpt")
    start, uninterrupted, resumed = (load_checkpoint(path) for path in paths)
    assert (start["epoch"], start["global_step"]) == (1, 4)
    for final in (uninterrupted, resumed):
        assert (final["epoch"], final["global_step"]) == (3, 8)
        assert final["lr_schedulers"][0]["last_epoch"] == 4
        assert final["optimizer_states"][0]["param_groups"][0]["lr"] == pytest.approx(LR * 0.2 * 0.2)
        adam_steps = {float(state["step"]) for state in final["optimizer_states"][0]["state"].values()}
        assert adam_steps == {8.0}  # Adam's moments continued too (a fresh optimiser would count 4)
    assert not torch.equal(start[RNG_KEY], uninterrupted[RNG_KEY])
    assert torch.equal(resumed[RNG_KEY], uninterrupted[RNG_KEY]), "the resumed augmenter stream diverged"
