"""DraemPlugin: anomalib integration, optimiser schedule, training step, checkpoints."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from anomalib.data import ImageBatch
from anomalib.engine import Engine
from lightning.pytorch import Trainer
from support import TINY, tiny_demo
from torch import nn
from torchvision.transforms.v2 import Normalize, Resize

from draem_plugin import DraemPlugin, SurfaceDemo
from draem_plugin.augmentation import PerlinAnomalyAugmenter
from draem_plugin.callbacks import FinalValidation, FiniteLossGuard, RunLengthWarning
from draem_plugin.data.checks import SplitCheck
from draem_plugin.data.train_cache import TrainImageCache


def tiny_engine(root: Path, **kwargs: object) -> Engine:
    return Engine(
        accelerator="cpu",
        default_root_dir=root,
        enable_progress_bar=False,
        logger=False,
        num_sanity_val_steps=0,
        **kwargs,
    )


def tiny_datamodule(root: Path) -> SurfaceDemo:
    return tiny_demo(root, train_batch_size=4, eval_batch_size=8, num_workers=0)


def test_defaults_follow_the_original_recipe() -> None:
    model = DraemPlugin()
    assert model.trainer_arguments == {}
    transform = model.pre_processor.transform
    resizes = [t for t in transform.transforms if isinstance(t, Resize)]
    assert [r.size for r in resizes] == [[256, 256]]
    assert not [t for t in transform.transforms if isinstance(t, Normalize)]
    names = [metric.name for metric in model.evaluator.test_metrics]
    assert names == ["image_AUROC", "image_F1Score", "pixel_AUROC", "pixel_AUPR", "pixel_AUPRO"]
    augmenter = model.augmenter
    assert isinstance(augmenter, PerlinAnomalyAugmenter)
    assert augmenter.anomaly_probability == 0.5
    assert tuple(augmenter.beta_range) == (0.0, 0.8)
    assert augmenter.normal_rotation_probability == 0.3
    assert model.model.score_filter_size == 21


def test_preset_and_overrides_reach_the_augmenter() -> None:
    model = DraemPlugin(**TINY, augmentation_preset="paper", anomaly_probability=0.7)
    assert model.augmenter.anomaly_probability == 0.7
    assert tuple(model.augmenter.beta_range) == (0.0, 0.9)
    assert len(model.augmenter.ops) == 7


@pytest.mark.parametrize(("max_epochs", "expected"), [(700, [560, 630]), (10, [8, 9])])
def test_lr_schedule_is_x02_at_80_and_90_percent(tmp_path: Path, max_epochs: int, expected: list[int]) -> None:
    model = DraemPlugin(**TINY)
    model.trainer = Trainer(max_epochs=max_epochs, logger=False, default_root_dir=tmp_path)  # attach, don't fit
    config = model.configure_optimizers()
    optimizer, scheduler = config["optimizer"], config["lr_scheduler"]["scheduler"]
    assert isinstance(optimizer, torch.optim.Adam)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-4)
    assert sorted(scheduler.milestones) == expected
    assert scheduler.gamma == pytest.approx(0.2)
    assert config["lr_scheduler"]["interval"] == "epoch"


def test_lr_schedule_follows_max_steps_when_epochs_are_unbounded(tmp_path: Path) -> None:
    model = DraemPlugin(**TINY)
    model.trainer = Trainer(max_epochs=-1, max_steps=1000, logger=False, default_root_dir=tmp_path)
    config = model.configure_optimizers()
    assert sorted(config["lr_scheduler"]["scheduler"].milestones) == [800, 900]
    assert config["lr_scheduler"]["interval"] == "step"


def test_training_step_returns_a_finite_loss_with_gradients() -> None:
    torch.manual_seed(0)
    model = DraemPlugin(**TINY, seed=0)
    batch = ImageBatch(image=torch.rand(4, 3, 64, 64))
    model.log = lambda *a, **k: None  # no trainer attached
    model.log_dict = lambda *a, **k: None
    losses = model.training_step(batch)
    assert sorted(losses) == ["focal", "l2", "loss", "ssim"]
    loss = losses["loss"]
    assert loss.item() == pytest.approx(sum(losses[k].item() for k in ("l2", "ssim", "focal")), rel=1e-6)
    assert loss.ndim == 0
    assert torch.isfinite(loss)
    loss.backward()
    grads = [p.grad for p in model.model.parameters()]
    assert all(g is not None for g in grads)
    assert sum(g.abs().sum() for g in grads) > 0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"image_size": 100}, "multiple of 32"),
        ({"image_size": 16}, "at least 32"),
        ({"image_size": 64, "score_filter_size": 65}, "score_filter_size"),
        ({"lr": 0.0}, "lr must be positive"),
        ({"lr_milestones": (0.5, 1.5)}, "lr_milestones"),
        ({"lr_gamma": 2.0}, "lr_gamma"),
        ({"focal_normal_weight": -0.1}, r"focal_normal_weight must be in \[0, 1\], got -0.1"),
        ({"anomaly_probability": 1.5}, "anomaly_probability"),
        ({"reconstructive_width": -1}, "reconstructive_width"),
        ({"normalization": "instance"}, "normalization must be 'batch'"),
        ({"seed": -1}, r"seed must be None or an int in \[0, 4294967295\]"),
        ({"seed": 2**70}, "got 1180591620717411303424"),
    ],
)
def test_bad_arguments_fail_at_construction(kwargs: dict, match: str) -> None:
    args = {**TINY, **kwargs}
    with pytest.raises(ValueError, match=match):
        DraemPlugin(**args)


def test_callbacks_wire_the_checks_guards_and_cache() -> None:
    model = DraemPlugin(**TINY)
    kinds = [type(callback) for callback in model.configure_callbacks()]
    for kind in (SplitCheck, FiniteLossGuard, FinalValidation, RunLengthWarning, TrainImageCache):
        assert kinds.count(kind) == 1, kind
    assert model.finite_loss_guard in model.configure_callbacks()
    assert TrainImageCache not in [type(c) for c in DraemPlugin(**TINY, cache_train_images=False).configure_callbacks()]


def test_a_seed_fixes_the_initial_weights_whatever_the_global_generator() -> None:
    torch.manual_seed(1)
    first = DraemPlugin(**TINY, seed=5).model.state_dict()
    torch.manual_seed(2)
    state_before = torch.random.get_rng_state()
    again = DraemPlugin(**TINY, seed=5).model.state_dict()
    assert torch.equal(torch.random.get_rng_state(), state_before)  # the global generator is left alone
    assert all(torch.equal(first[name], again[name]) for name in first)
    other = DraemPlugin(**TINY, seed=6).model.state_dict()
    assert not all(torch.equal(first[name], other[name]) for name in first)


def has_group_norm(model: DraemPlugin) -> bool:
    return any(isinstance(module, nn.GroupNorm) for module in model.model.modules())


def test_a_checkpoint_brings_its_normalization_and_one_from_before_the_option_means_batchnorm() -> None:
    group = DraemPlugin(**TINY, normalization="group")
    assert has_group_norm(group)
    default = DraemPlugin(**TINY)
    default.on_load_checkpoint({"hyper_parameters": dict(group.hparams)})
    assert default.hparams["normalization"] == "group"
    assert has_group_norm(default)
    default.load_state_dict(group.state_dict())  # the rebuilt networks take the checkpoint's weights
    older = {name: value for name, value in DraemPlugin(**TINY).hparams.items() if name != "normalization"}
    group.on_load_checkpoint({"hyper_parameters": older})
    assert group.hparams["normalization"] == "batch"
    assert not has_group_norm(group)


@pytest.mark.slow
def test_fit_checkpoint_and_load_from_checkpoint(demo_root: Path, tmp_path: Path) -> None:
    model = DraemPlugin(**TINY, seed=3, focal_normal_weight=0.5)
    engine = tiny_engine(tmp_path, max_epochs=2)
    datamodule = tiny_datamodule(demo_root)
    engine.fit(model, datamodule=datamodule)
    ckpt = engine.trainer.checkpoint_callback.best_model_path or engine.trainer.checkpoint_callback.last_model_path
    assert ckpt and Path(ckpt).is_file()
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    assert state["hyper_parameters"]["reconstructive_width"] == 4
    assert "draem_plugin_augmenter_rng_state" in state

    restored = DraemPlugin.load_from_checkpoint(ckpt)  # weights_only=True, as anomalib 2.7 loads
    assert isinstance(restored, DraemPlugin)
    assert restored.loss.focal_normal_weight == 0.5  # the loss options travel with the checkpoint
    image = torch.rand(2, 3, 64, 64)
    model.eval()
    restored.eval()
    with torch.no_grad():
        expected, actual = model.model(image), restored.model(image)
    torch.testing.assert_close(actual.anomaly_map, expected.anomaly_map)
    torch.testing.assert_close(actual.pred_score, expected.pred_score)
    # The restored model tests through the Engine like the original.
    results = tiny_engine(tmp_path / "test").test(restored, datamodule=datamodule)
    assert set(results[0]) >= {"image_AUROC", "pixel_AUROC", "pixel_AUPR", "pixel_AUPRO", "image_F1Score"}
