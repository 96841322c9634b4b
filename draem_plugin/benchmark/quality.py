"""``draem-bench quality``: train and test DraemPlugin, anomalib's Draem, PatchCore and PaDiM on MVTec-layout data.

Every model gets the same anomalib ``Engine`` settings, the same ``MVTecAD`` datamodule (``root``, ``category``),
the same input size and the same evaluator metrics (:data:`~draem_plugin.benchmark.models.METRIC_NAMES`), so that
the columns compare. The DRÆMs train ``epochs`` epochs (PatchCore and PaDiM fit in their one epoch) and validate
once, after their last epoch (the validation set gives the post-processor its normalisation and thresholds). Writes
``quality.csv``, ``quality.md`` and ``quality.png`` (bar chart) to ``out_dir``.
"""

from __future__ import annotations

import contextlib
import csv
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

from .common import coreset_memory_guard, default_texture_source, format_table, quiet, resolve_device
from .models import MODEL_NAMES, build_evaluator, build_model, count_parameters

__all__ = ["COLUMNS", "CSV_COLUMNS", "run_quality", "write_chart", "write_csv", "write_markdown"]

logger = logging.getLogger(__name__)

#: Columns of the markdown table (and the first columns of the CSV).
COLUMNS = (
    "model",
    "category",
    "image_AUROC",
    "pixel_AUROC",
    "pixel_AP",
    "pixel_AUPRO",
    "fit_s",
    "test_s",
    "test_images_per_s",
)
#: All CSV columns.
CSV_COLUMNS = (
    *COLUMNS,
    "image_F1Score",
    "epochs",
    "image_size",
    "train_images",
    "test_images",
    "params",
    "setup_s",
    "details",
    "dataset",
)
#: anomalib metric name -> column.
_METRIC_COLUMNS = {
    "image_AUROC": "image_AUROC",
    "pixel_AUROC": "pixel_AUROC",
    "pixel_AUPR": "pixel_AP",
    "pixel_AUPRO": "pixel_AUPRO",
}


def _describe(name: str, model: Any, reconstructive_width: int, discriminative_width: int) -> str:  # noqa: ANN401
    if name in ("DraemPlugin", "Draem"):
        return f"widths {reconstructive_width}/{discriminative_width}"
    return f"backbone {model.model.backbone}"


def run_quality(
    root: str | Path,
    categories: list[str],
    models: list[str] | None = None,
    epochs: int = 10,
    image_size: int = 256,
    reconstructive_width: int = 128,
    discriminative_width: int = 64,
    source: str | Path | None = None,
    backbone: str | None = None,
    padim_n_features: int | None = None,
    device: str = "cpu",
    batch_size: int = 8,
    eval_batch_size: int = 16,
    num_workers: int = 0,
    seed: int = 0,
    work_dir: str | Path | None = None,
) -> list[dict[str, Any]]:
    """Fit and test every model on every category; one row per (model, category)."""
    import torch  # noqa: PLC0415
    from anomalib.data import MVTecAD  # noqa: PLC0415
    from anomalib.engine import Engine  # noqa: PLC0415
    from lightning.pytorch import seed_everything  # noqa: PLC0415

    names = list(models or MODEL_NAMES)
    unknown = [name for name in names if name not in MODEL_NAMES]
    if unknown:
        msg = f"unknown model(s) {unknown}; choose from {list(MODEL_NAMES)}."
        raise ValueError(msg)
    if epochs < 1:
        msg = f"epochs must be at least 1, got {epochs}."
        raise ValueError(msg)
    root = Path(root)
    dev = resolve_device(device)
    texture_source = default_texture_source(source) if any(n in ("DraemPlugin", "Draem") for n in names) else None
    rows = []
    with tempfile.TemporaryDirectory(prefix="draem_bench_quality_") as temp:
        results_dir = Path(work_dir) if work_dir is not None else Path(temp)
        for category in categories:
            if not (root / category).is_dir():
                msg = f"category folder {root / category} does not exist (expected the MVTec AD layout)."
                raise FileNotFoundError(msg)
            for name in names:
                seed_everything(seed, verbose=False)
                with quiet():
                    start = time.perf_counter()
                    model = build_model(
                        name,
                        image_size=image_size,
                        reconstructive_width=reconstructive_width,
                        discriminative_width=discriminative_width,
                        source=texture_source,
                        backbone=backbone,
                        padim_n_features=padim_n_features,
                        seed=seed,
                        evaluator=build_evaluator(),
                        visualizer=False,
                    )
                    setup = time.perf_counter() - start
                    datamodule = MVTecAD(
                        root=root,
                        category=category,
                        train_batch_size=batch_size,
                        eval_batch_size=eval_batch_size,
                        num_workers=num_workers,
                        seed=seed,
                    )
                    model_epochs = model.trainer_arguments.get("max_epochs", epochs)
                    engine = Engine(
                        accelerator="gpu" if dev.type == "cuda" else "cpu",
                        devices=1,
                        max_epochs=epochs,
                        check_val_every_n_epoch=model_epochs,
                        num_sanity_val_steps=0,
                        logger=False,
                        enable_progress_bar=False,
                        enable_model_summary=False,
                        default_root_dir=results_dir / name / category,
                    )
                    guard = coreset_memory_guard() if name in ("Patchcore", "Padim") else contextlib.nullcontext()
                    start = time.perf_counter()
                    with guard:
                        engine.fit(model=model, datamodule=datamodule)
                    fit_s = time.perf_counter() - start
                    start = time.perf_counter()
                    results = engine.test(model=model, datamodule=datamodule, verbose=False)
                    test_s = time.perf_counter() - start
                metrics = results[0] if results else {}
                test_images = len(datamodule.test_data)
                row: dict[str, Any] = {"model": name, "category": category}
                for metric, column in _METRIC_COLUMNS.items():
                    row[column] = float(metrics.get(metric, float("nan")))
                row.update(
                    {
                        "fit_s": fit_s,
                        "test_s": test_s,
                        "test_images_per_s": test_images / test_s,
                        "image_F1Score": float(metrics.get("image_F1Score", float("nan"))),
                        "epochs": model_epochs,
                        "image_size": image_size,
                        "train_images": len(datamodule.train_data),
                        "test_images": test_images,
                        "params": count_parameters(model.model),
                        "setup_s": setup,
                        "details": _describe(name, model, reconstructive_width, discriminative_width),
                        "dataset": str(root),
                    },
                )
                logger.info("quality %s", row)
                rows.append(row)
                del model, engine, datamodule
                if dev.type == "cuda":
                    torch.cuda.empty_cache()
    return rows


def write_csv(rows: list[dict[str, Any]], path: Path) -> Path:
    """Write ``rows`` with :data:`CSV_COLUMNS` to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_markdown(rows: list[dict[str, Any]], path: Path, header: str = "") -> Path:
    """Write the markdown table of :data:`COLUMNS` (with an optional header paragraph) to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = (header.rstrip() + "\n\n" if header else "") + format_table(rows, COLUMNS) + "\n"
    path.write_text(text, encoding="utf-8")
    return path


def write_chart(rows: list[dict[str, Any]], path: Path, title: str = "") -> Path:
    """Bar chart: per category, the four quality metrics of every model, and the fit seconds."""
    import matplotlib as mpl  # noqa: PLC0415

    mpl.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    categories = list(dict.fromkeys(row["category"] for row in rows))
    models = list(dict.fromkeys(row["model"] for row in rows))
    metrics = ("image_AUROC", "pixel_AUROC", "pixel_AP", "pixel_AUPRO")
    figure, axes = plt.subplots(
        len(categories),
        2,
        figsize=(12, 3.6 * len(categories)),
        squeeze=False,
        gridspec_kw={"width_ratios": [3, 1]},
    )
    width = 0.8 / max(1, len(models))
    for index, category in enumerate(categories):
        by_model = {row["model"]: row for row in rows if row["category"] == category}
        quality_axis, time_axis = axes[index]
        for offset, model in enumerate(models):
            row = by_model.get(model, {})
            values = [row.get(metric, float("nan")) for metric in metrics]
            positions = [m + (offset - (len(models) - 1) / 2) * width for m in range(len(metrics))]
            bars = quality_axis.bar(positions, values, width, label=model)
            quality_axis.bar_label(bars, fmt="%.2f", fontsize=7)
        quality_axis.set_xticks(range(len(metrics)), metrics)
        quality_axis.set_ylim(0, 1.1)
        quality_axis.set_title(f"{category}: test metrics")
        quality_axis.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=len(models))
        fit = [by_model.get(model, {}).get("fit_s", float("nan")) for model in models]
        time_axis.bar(range(len(models)), fit, color=[f"C{i}" for i in range(len(models))])
        time_axis.set_xticks(range(len(models)), models, rotation=30, fontsize=8)
        time_axis.set_title(f"{category}: fit seconds")
    if title:
        figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(figure)
    return path
