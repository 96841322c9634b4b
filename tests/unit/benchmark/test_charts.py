"""The quality bar chart and the learning-curve chart are written as PNG files."""

from __future__ import annotations

from pathlib import Path

from draem_plugin.benchmark.charts import write_curve_chart, write_quality_chart

PNG = b"\x89PNG\r\n\x1a\n"


def test_chart_draws_curves_and_reference_lines(tmp_path: Path) -> None:
    curves = [
        {
            "category": "bottle",
            "model": m,
            "seed": s,
            "epoch": e,
            "images_seen": 8 * e,
            "image_AUROC": 0.5 + e / 10,
            "pixel_AUROC": 0.6,
            "pixel_AP": 0.1 * e,
        }
        for m in ("DraemPlugin", "Draem")
        for s in (0, 1)
        for e in (1, 2)
    ]
    references = [{"category": "bottle", "model": "Padim", "image_AUROC": 0.99, "pixel_AUROC": 0.98, "pixel_AP": 0.7}]
    path = write_curve_chart(curves, references, tmp_path / "curves.png")
    assert path.read_bytes()[:8] == PNG


def test_quality_chart_has_a_row_per_category(tmp_path: Path) -> None:
    rows = [
        {
            "category": c,
            "model": m,
            "image_AUROC": 0.9,
            "pixel_AUROC": 0.8,
            "pixel_AP": 0.5,
            "pixel_AUPRO": 0.6,
            "fit_s": 3.0,
        }
        for c in ("bottle", "kolektorsdd")
        for m in ("DraemPlugin", "Padim")
    ]
    assert write_quality_chart(rows, tmp_path / "q.png", title="t").read_bytes()[:8] == PNG
