"""The benchmarked models are built with equal settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from draem_plugin import DraemPlugin
from draem_plugin.benchmark.models import (
    MODEL_NAMES,
    build_evaluator,
    build_model,
    chosen_models,
    count_parameters,
    padim_features,
)


def test_both_draems_have_the_same_size_at_equal_widths(textures: Path) -> None:
    plugin = build_model(
        "DraemPlugin",
        image_size=64,
        reconstructive_width=8,
        discriminative_width=4,
        source=textures,
        plugin_args={"lr": 0.0003, "score_filter_size": 11},
    )
    anomalib = build_model("Draem", image_size=64, reconstructive_width=8, discriminative_width=4, source=textures)
    assert isinstance(plugin, DraemPlugin) and plugin.hparams.lr == 0.0003 and plugin.model.score_filter_size == 11
    assert count_parameters(plugin.model) == count_parameters(anomalib.model)
    assert anomalib.pre_processor.transform.transforms[0].size == [64, 64]


def test_evaluator_and_defaults() -> None:
    assert [m.name for m in build_evaluator(["image_AUROC", "pixel_AUPR"]).test_metrics] == [
        "image_AUROC",
        "pixel_AUPR",
    ]
    with pytest.raises(ValueError, match="unknown metric 'pixel_IoU'"):
        build_evaluator(["pixel_IoU"])
    assert padim_features("resnet18.tv_in1k", None) == 100 and padim_features(None, None) is None
    with pytest.raises(ValueError, match="anomalib's Draem needs --source DIR"):
        build_model("Draem")
    with pytest.raises(ValueError, match="unknown model 'Fastflow'"):
        build_model("Fastflow")


def test_chosen_models_default_to_all_and_name_the_unknown_ones() -> None:
    assert chosen_models(None) == list(MODEL_NAMES) == ["DraemPlugin", "Draem", "Patchcore", "Padim"]
    assert chosen_models(["Padim", "Draem"]) == ["Padim", "Draem"]
    with pytest.raises(ValueError, match=r"unknown model\(s\) \['Fastflow'\]; choose from"):
        chosen_models(["Draem", "Fastflow"])


def test_anomalib_draem_focal_term_ignores_normal_pixels_unlike_draem_plugins() -> None:
    """What docs/benchmarks.md reports: kornia reads anomalib's ``FocalLoss(alpha=1)`` as class weights (0, 1)."""
    import torch
    from anomalib.models.image.draem.loss import DraemLoss

    from draem_plugin.loss import DraemPluginLoss

    image = torch.rand(2, 3, 32, 32)
    normal = torch.zeros(2, 1, 32, 32)
    says_anomalous = torch.stack([torch.full((2, 32, 32), -4.0), torch.full((2, 32, 32), 4.0)], dim=1)
    # A perfect reconstruction and every normal pixel called anomalous: anomalib's Draem sees no loss at all ...
    assert DraemLoss()(image, image, normal, says_anomalous).item() == pytest.approx(0.0, abs=1e-5)
    # ... DraemPlugin (the original's focal loss) penalises every pixel: -(1 - p)^2 log p with p = sigmoid(-8).
    p = torch.sigmoid(torch.tensor(-8.0))
    focal = DraemPluginLoss(focal_smoothing=0)(image, image, normal, says_anomalous)["focal"].item()
    assert focal == pytest.approx(float(-((1 - p) ** 2) * torch.log(p)), rel=1e-4)
    assert DraemPluginLoss()(image, image, normal, says_anomalous)["focal"].item() > 7.5
    # On anomalous pixels the two agree without smoothing (kornia's "mean" also divides by the 2 classes).
    anomalous = torch.ones(2, 1, 32, 32)
    ours = DraemPluginLoss(focal_smoothing=0)(image, image, anomalous, says_anomalous)["focal"].item()
    assert DraemLoss()(image, image, anomalous, says_anomalous).item() == pytest.approx(ours / 2, rel=1e-4)
