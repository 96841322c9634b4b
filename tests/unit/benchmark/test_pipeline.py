"""draem-bench pipeline: the cache on and off, each measured as draem-reproduce measures a run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from draem_plugin import reproduce
from draem_plugin.benchmark.pipeline import Pipeline


def test_rows_compare_cached_and_uncached_training(
    textures: Path, mvtec_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    measured: list[bool] = []

    def fake_fit(model: Any, datamodule: Any, output_dir: Path, **kwargs: Any) -> tuple[None, dict]:
        cached = model.train_image_cache is not None
        measured.append(cached)
        assert kwargs["max_epochs"] == 2 and kwargs["precision"] == "32-true"
        ips = 30.0 if cached else 10.0
        return None, {
            "train_images_per_second": ips,
            "network_images_per_second": 40.0,
            "share_outside_networks": 1 - ips / 40.0,
            "fit_seconds_this_run": 1.0,
        }

    monkeypatch.setattr(reproduce, "fit_and_measure", fake_fit)
    rows = Pipeline(
        root=str(mvtec_root),
        category="brick",
        source=str(textures),
        epochs=2,
        batch_size=4,
        image_size=64,
        reconstructive_width=4,
        discriminative_width=4,
        num_workers=0,
    ).measure()
    assert measured == [True, False]
    assert [row["cache_train_images"] for row in rows] == [True, False]
    assert [row["ratio"] for row in rows] == pytest.approx([3.0, 1.0])
    assert [row["share_outside_networks"] for row in rows] == pytest.approx([0.25, 0.75])
    for row in rows:
        assert set(Pipeline.COLUMNS) <= row.keys()


def test_a_real_run_measures_both(textures: Path, mvtec_root: Path) -> None:
    rows = Pipeline(
        root=str(mvtec_root),
        category="brick",
        source=str(textures),
        epochs=2,
        batch_size=4,
        image_size=64,
        reconstructive_width=4,
        discriminative_width=4,
        num_workers=0,
    ).measure()
    assert [row["cache_train_images"] for row in rows] == [True, False]
    assert rows[1]["ratio"] == 1.0
    assert all(0.0 <= row["share_outside_networks"] < 1.0 for row in rows)
