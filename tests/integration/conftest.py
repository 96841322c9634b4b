"""Session fixtures of the end-to-end tests.

``trained_run`` is one tiny ``anomalib train`` run in a subprocess, shared by the export, predict, test, validate and
resume tests: 4 epochs, a checkpoint after every epoch, metrics logged to CSV. ``frames`` are new 256x256 SurfaceDemo
test images (a line camera's frames, unseen in training), and ``lightning_predictions`` are the trained Lightning
model's predictions on them through ``Engine.predict``, the reference of the exported models.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from workflow import (
    FRAME_SIZE,
    OUTPUT_FIELDS,
    TrainedRun,
    callback_args,
    data_args,
    model_args,
    run_cli,
    trainer_args,
)


@pytest.fixture(scope="session")
def trained_run(demo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> TrainedRun:
    """``anomalib train`` (fit, then test) of the tiny DraemPlugin on the tiny SurfaceDemo, with every checkpoint."""
    out = tmp_path_factory.mktemp("trained_run")
    run = TrainedRun(demo_root=demo_root, out=out, checkpoints=out / "checkpoints")
    args = ["train", *model_args(), *data_args(demo_root), *trainer_args(out), *callback_args(run.checkpoints)]
    run_cli(args, cwd=out)
    return run


@pytest.fixture(scope="session")
def frames(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder of six new 256x256 SurfaceDemo test images (2 good, 1 per defect type) in ``<defect>/NNN.png``."""
    from draem_plugin.data import build_surface_demo

    root = tmp_path_factory.mktemp("frames")
    category = build_surface_demo(
        root, "brick", image_size=FRAME_SIZE, num_train=1, num_test_good=2, num_test_defect=1, seed=1
    )
    return category / "test"


@pytest.fixture(scope="session")
def lightning_predictions(trained_run: TrainedRun, frames: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """``Engine.predict`` of the trained checkpoint on ``frames``: ``{relative path: {field: numpy array}}``."""
    from anomalib.engine import Engine

    from draem_plugin import DraemPlugin

    model = DraemPlugin.load_from_checkpoint(trained_run.last, visualizer=False)
    engine = Engine(
        accelerator="cpu", default_root_dir=tmp_path_factory.mktemp("predict"), enable_progress_bar=False, logger=False
    )
    predictions = {}
    for batch in engine.predict(model, data_path=frames):
        for index, path in enumerate(batch.image_path):
            predictions[Path(path).relative_to(frames)] = {
                field: getattr(batch, field)[index].squeeze().numpy() for field in OUTPUT_FIELDS
            }
    return predictions
