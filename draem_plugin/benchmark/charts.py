"""The charts of ``draem-bench quality``: test metrics per model as bars, and learning curves as lines.

Example:
    >>> write_quality_chart([{"category": "bottle", "model": "Padim", "image_AUROC": 0.99, "fit_s": 10.0}],
    ...                     Path("/tmp/quality.png"))  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .curves import CURVE_METRICS

__all__ = ["write_curve_chart", "write_quality_chart"]


def _pyplot() -> Any:
    """Matplotlib's pyplot on the file-only Agg backend."""
    import matplotlib as mpl

    mpl.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def write_quality_chart(rows: list[dict[str, Any]], path: Path, title: str = "") -> Path:
    """Bar chart: per category, the four quality metrics of every model, and the fit seconds."""
    plt = _pyplot()
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


def write_curve_chart(curves: list[dict[str, Any]], references: list[dict[str, Any]], path: Path) -> Path:
    """Plot the curve metrics against training images seen, one line per (model, seed), one row per category.

    ``references`` (rows of models that train in one epoch, e.g. PaDiM and PatchCore) are drawn as horizontal
    dashed lines at their final metrics.
    """
    plt = _pyplot()
    categories = list(dict.fromkeys(row["category"] for row in [*curves, *references]))
    columns = list(CURVE_METRICS.values())
    figure, axes = plt.subplots(
        len(categories), len(columns), figsize=(5 * len(columns), 3.8 * len(categories)), squeeze=False
    )
    colours: dict[str, str] = {}
    for row_index, category in enumerate(categories):
        runs = list(dict.fromkeys((r["model"], r["seed"]) for r in curves if r["category"] == category))
        for column_index, column in enumerate(columns):
            axis = axes[row_index][column_index]
            for model, seed in runs:
                points = sorted(
                    (r["images_seen"], r[column])
                    for r in curves
                    if r["category"] == category and r["model"] == model and r["seed"] == seed
                )
                colour = colours.setdefault(model, f"C{len(colours)}")
                style = ("-", "--", ":", "-.")[seed % 4]
                axis.plot(*zip(*points, strict=True), style, color=colour, marker=".", label=f"{model} (seed {seed})")
            for reference in (r for r in references if r["category"] == category):
                colour = colours.setdefault(reference["model"], f"C{len(colours)}")
                axis.axhline(reference[column], color=colour, linestyle="--", linewidth=1, label=reference["model"])
            axis.set_title(f"{category}: {column}")
            axis.set_xlabel("training images seen")
            axis.grid(alpha=0.3)
        axes[row_index][0].legend(fontsize=7)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(figure)
    return path
