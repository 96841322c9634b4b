"""SurfaceDemo as an anomalib datamodule: builds in prepare_data, loads like MVTecAD."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from draem_plugin.data import SurfaceDemo
from draem_plugin.data.surface_demo import build, render

SMALL = {"image_size": 64, "num_train": 4, "num_test_good": 3, "num_test_defect": 2}


def test_datamodule_builds_and_loads(tmp_path: Path) -> None:
    datamodule = SurfaceDemo(
        root=tmp_path,
        category="gravel",
        image_size=64,
        num_train=6,
        num_test_good=3,
        num_test_defect=2,
        train_batch_size=4,
        eval_batch_size=16,
        num_workers=0,
    )
    datamodule.prepare_data()
    datamodule.setup()

    batch = next(iter(datamodule.train_dataloader()))
    assert batch.image.shape == (4, 3, 64, 64)
    assert batch.image.dtype == torch.float32
    assert batch.image.min() >= 0.0 and batch.image.max() <= 1.0
    assert not batch.gt_label.any()

    test = next(iter(datamodule.test_dataloader()))
    assert len(datamodule.test_data) == 3 + 2 * len(render.DEFECT_TYPES) == len(test.image)
    assert sorted(test.gt_label.tolist()) == [False] * 3 + [True] * 8
    assert test.gt_mask.shape == (11, 64, 64)
    assert all(mask.any() == label for mask, label in zip(test.gt_mask, test.gt_label, strict=True))
    assert len(datamodule.val_data) == len(datamodule.test_data)  # MVTecAD's default: validate on the test set


def test_datamodule_keeps_mvtec_split_arguments(tmp_path: Path) -> None:
    datamodule = SurfaceDemo(root=tmp_path, val_split_mode="from_test", seed=3, build_seed=5, num_workers=0, **SMALL)
    datamodule.prepare_data()
    datamodule.setup()
    assert len(datamodule.val_data) + len(datamodule.test_data) == 3 + 2 * len(render.DEFECT_TYPES)
    assert json.loads((tmp_path / "brick" / build.MANIFEST_NAME).read_text())["params"]["seed"] == 5


def test_setup_before_prepare_data_explains_the_fix(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"call prepare_data\(\) before setup\(\)"):
        SurfaceDemo(root=tmp_path, **SMALL).setup()
