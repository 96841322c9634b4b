"""FinalValidation: a fit always ends validated, with a checkpoint and the post-processor's thresholds."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from anomalib.engine import Engine
from lightning.pytorch import Callback
from support import TINY, tiny_demo

from draem_plugin import DraemPlugin


class Validations(Callback):
    def __init__(self) -> None:
        self.steps: list[int] = []

    def on_validation_end(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking:
            self.steps.append(trainer.global_step)


@pytest.mark.parametrize(
    ("schedule", "steps"),
    [
        ({"max_epochs": 1, "check_val_every_n_epoch": 12}, [2]),  # the demo config with --trainer.max_epochs 1
        ({"max_epochs": 3, "check_val_every_n_epoch": 2}, [4, 6]),
        ({"max_steps": 3, "val_check_interval": 2, "check_val_every_n_epoch": None}, [2, 3]),
        ({"max_epochs": 2}, [2, 4]),  # validated at the end already: nothing more
    ],
)
def test_training_ends_with_a_validation_a_checkpoint_and_thresholds(
    demo_root: Path, tmp_path: Path, schedule: dict, steps: list[int]
) -> None:
    datamodule = tiny_demo(demo_root, train_batch_size=4, num_workers=0)
    model = DraemPlugin(**TINY, seed=0, visualizer=False)
    validations = Validations()
    engine = Engine(
        accelerator="cpu",
        default_root_dir=tmp_path,
        logger=False,
        enable_progress_bar=False,
        num_sanity_val_steps=0,
        callbacks=[validations],
        **schedule,
    )
    engine.fit(model, datamodule=datamodule)
    assert validations.steps == steps
    (checkpoint,) = {path.resolve() for path in tmp_path.rglob("weights/lightning/model.ckpt")}
    saved = torch.load(checkpoint, map_location="cpu", weights_only=True)
    assert saved["global_step"] == steps[-1]
    for name in ("post_processor._image_threshold", "post_processor.image_min", "post_processor.pixel_max"):
        assert torch.isfinite(saved["state_dict"][name]), name
