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
