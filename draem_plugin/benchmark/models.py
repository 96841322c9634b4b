"""Build the benchmarked models with equal settings: DraemPlugin, anomalib's Draem, Patchcore and Padim.

anomalib's ``Draem`` hard-codes the widths 128/64 inside its ``DraemModel``; :func:`build_anomalib_draem` replaces
its two sub-networks by anomalib's own ``ReconstructiveSubNetwork(base_width=...)`` and
``DiscriminativeSubNetwork(base_width=...)`` so that both DRÆMs can be compared at equal reduced widths.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import torch

from ..validation import as_size

__all__ = [
    "METRIC_NAMES",
    "MODEL_NAMES",
    "ModelName",
    "build_evaluator",
    "build_model",
    "chosen_models",
    "count_parameters",
]

logger = logging.getLogger(__name__)

ModelName = Literal["DraemPlugin", "Draem", "Patchcore", "Padim"]
MODEL_NAMES: tuple[str, ...] = ("DraemPlugin", "Draem", "Patchcore", "Padim")

#: Metrics every model is evaluated with in ``quality`` (and, with ``metrics:``, in ``anomalib benchmark``).
METRIC_NAMES: tuple[str, ...] = ("image_AUROC", "image_F1Score", "pixel_AUROC", "pixel_AUPR", "pixel_AUPRO")
_ALL_METRICS = (*METRIC_NAMES, "pixel_F1Score")

#: PaDiM's ``n_features`` for backbones anomalib has no default for (timm names with a pretrained tag).
_PADIM_FEATURES = {"resnet18": 100, "wide_resnet50_2": 550}


def chosen_models(models: Sequence[str] | None) -> list[str]:
    """The models a subcommand runs: ``models``, or all of :data:`MODEL_NAMES` when none are given.

    Raises:
        ValueError: if a name is not one of :data:`MODEL_NAMES`.
    """
    names = list(models or MODEL_NAMES)
    unknown = [name for name in names if name not in MODEL_NAMES]
    if unknown:
        msg = f"unknown model(s) {unknown}; choose from {list(MODEL_NAMES)}."
        raise ValueError(msg)
    return names


def build_evaluator(names: Sequence[str] = METRIC_NAMES) -> Any:
    """An anomalib ``Evaluator`` computing the test metrics ``names`` (e.g. ``"image_AUROC"``, ``"pixel_AUPRO"``).

    Image metrics use ``pred_score`` / ``pred_label`` against ``gt_label``; pixel metrics use ``anomaly_map`` /
    ``pred_mask`` against ``gt_mask`` and are non-strict (a test set without masks reports image metrics only).

    Example:
        >>> [m.name for m in build_evaluator(["image_AUROC", "pixel_AUPR"]).test_metrics]
        ['image_AUROC', 'pixel_AUPR']
    """
    from anomalib.metrics import AUPR, AUPRO, AUROC, Evaluator, F1Score

    classes = {"AUROC": AUROC, "AUPR": AUPR, "AUPRO": AUPRO, "F1Score": F1Score}
    metrics = []
    for name in names:
        level, _, metric = str(name).partition("_")
        if name not in _ALL_METRICS:
            msg = f"unknown metric {name!r}; choose from {list(_ALL_METRICS)}."
            raise ValueError(msg)
        if level == "image":
            fields = ["pred_label" if metric == "F1Score" else "pred_score", "gt_label"]
            metrics.append(classes[metric](fields=fields, prefix="image_"))
        else:
            fields = ["pred_mask" if metric == "F1Score" else "anomaly_map", "gt_mask"]
            metrics.append(classes[metric](fields=fields, prefix="pixel_", strict=False))
    return Evaluator(test_metrics=metrics)


def count_parameters(module: torch.nn.Module) -> int:
    """Number of parameters of ``module``."""
    return sum(p.numel() for p in module.parameters())


def build_anomalib_draem(
    source: str | Path,
    reconstructive_width: int = 128,
    discriminative_width: int = 64,
    image_size: int | tuple[int, int] = 256,
    **kwargs: Any,
) -> Any:
    """Anomalib's ``Draem`` drawing textures from ``source``, with the sub-network base widths given.

    ``source`` must be an existing folder: anomalib's ``Draem`` otherwise downloads DTD at construction.
    """
    from anomalib.models import Draem
    from anomalib.models.image.draem.torch_model import (
        DiscriminativeSubNetwork,
        ReconstructiveSubNetwork,
    )

    source = Path(source)
    if not source.is_dir():
        msg = f"anomalib's Draem needs an existing texture folder (it downloads DTD otherwise), got {source}."
        raise FileNotFoundError(msg)
    size = as_size(image_size, "image_size")
    model = Draem(dtd_dir=source, pre_processor=Draem.configure_pre_processor(size), **kwargs)
    if (reconstructive_width, discriminative_width) != (128, 64):
        model.model.reconstructive_subnetwork = ReconstructiveSubNetwork(base_width=reconstructive_width)
        model.model.discriminative_subnetwork = DiscriminativeSubNetwork(
            in_channels=6,
            out_channels=2,
            base_width=discriminative_width,
        )
    return model


def padim_features(backbone: str | None, n_features: int | None) -> int | None:
    """PaDiM's ``n_features``: as given, else anomalib's default for the backbone family (``resnet18.tv_in1k``: 100)."""
    if n_features is not None or backbone is None:
        return n_features
    return _PADIM_FEATURES.get(backbone.split(".")[0])


def build_model(
    name: str,
    *,
    image_size: int | tuple[int, int] = 256,
    reconstructive_width: int = 128,
    discriminative_width: int = 64,
    source: str | Path | None = None,
    backbone: str | None = None,
    padim_n_features: int | None = None,
    seed: int | None = 0,
    plugin_args: dict[str, Any] | None = None,
    evaluator: Any = True,
    visualizer: bool = True,
) -> Any:
    """Build one benchmarked model, resizing its inputs to ``image_size`` x ``image_size``.

    Args:
        name: ``DraemPlugin``, ``Draem`` (anomalib's), ``Patchcore`` or ``Padim``.
        image_size: input size (one side, or height and width) every model's pre-processor resizes to.
        reconstructive_width: DRÆM reconstructive base width (both DRÆMs; original 128).
        discriminative_width: DRÆM discriminative base width (both DRÆMs; original 64).
        source: texture folder of both DRÆMs' anomaly synthesis (``None``: DraemPlugin draws procedural textures;
            anomalib's Draem then cannot be built offline).
        backbone: timm backbone of PatchCore and PaDiM; ``None`` keeps anomalib's defaults (wide_resnet50_2 and
            resnet18, downloaded where there is a network).
        padim_n_features: PaDiM's kept feature count (default: anomalib's for the backbone family).
        seed: DraemPlugin's seed (initialisation, augmentation, shuffling).
        plugin_args: more DraemPlugin arguments (e.g. ``lr``, ``score_filter_size``).
        evaluator: ``True`` (the model's default), ``False``, or an ``Evaluator``.
        visualizer: build the model's default visualizer.
    """
    size = as_size(image_size, "image_size")
    common: dict[str, Any] = {"evaluator": evaluator, "visualizer": visualizer}
    if name == "DraemPlugin":
        from draem_plugin import DraemPlugin

        return DraemPlugin(
            anomaly_source_path=source,
            reconstructive_width=reconstructive_width,
            discriminative_width=discriminative_width,
            image_size=size,
            seed=seed,
            **(plugin_args or {}),
            **common,
        )
    if name == "Draem":
        if source is None:
            msg = "anomalib's Draem needs --source DIR (a texture folder); it would download DTD otherwise."
            raise ValueError(msg)
        return build_anomalib_draem(source, reconstructive_width, discriminative_width, image_size, **common)
    if name == "Patchcore":
        from anomalib.models import Patchcore

        kwargs = {} if backbone is None else {"backbone": backbone}
        return Patchcore(
            layers=("layer2", "layer3"),
            pre_processor=Patchcore.configure_pre_processor(image_size=size),
            **kwargs,
            **common,
        )
    if name == "Padim":
        from anomalib.models import Padim

        kwargs = {} if backbone is None else {"backbone": backbone}
        return Padim(
            layers=["layer1", "layer2", "layer3"],
            n_features=padim_features(backbone, padim_n_features),
            pre_processor=Padim.configure_pre_processor(image_size=size),
            **kwargs,
            **common,
        )
    msg = f"unknown model {name!r}; choose from {list(MODEL_NAMES)}."
    raise ValueError(msg)
