"""draem-bench augment: both augmenters on the same textures, and the ratio the right way round."""

from __future__ import annotations

from pathlib import Path

import pytest

from draem_plugin.benchmark import augment
from draem_plugin.benchmark.augment import Augment


def fixed_times(contenders: dict, device: object, warmup: int, rounds: int, iters: int) -> dict[str, list[float]]:
    for run in contenders.values():
        run()  # each contender still runs once
    return {"plugin": [0.1, 0.1, 0.1], "anomalib": [0.4, 0.4, 0.4]}


def test_rows_per_batch_size_with_the_plugins_figure_over_anomalibs(
    textures: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(augment, "time_alternately", fixed_times)
    rows = Augment(source=str(textures), batch_size=[2, 4], image_size=64, warmup=0, rounds=1, iters=1).measure()
    assert [row["batch_size"] for row in rows] == [2, 4]
    for row in rows:
        assert set(Augment.COLUMNS) <= row.keys()
        assert row["plugin_images_per_s"] == pytest.approx(row["batch_size"] / 0.1)
        assert row["anomalib_images_per_s"] == pytest.approx(row["batch_size"] / 0.4)
        assert row["ratio"] == pytest.approx(4.0)  # DraemPlugin 4x faster: ratio above 1
        assert row["source_images_plugin"] == row["source_images_anomalib"] == 4  # both draw the same real textures
