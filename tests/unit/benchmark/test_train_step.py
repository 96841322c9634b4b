"""draem-bench train-step: equal architectures, known timings give known ratios."""

from __future__ import annotations

from pathlib import Path

import pytest

from draem_plugin.benchmark import train_step
from draem_plugin.benchmark.train_step import TrainStep


def fixed_times(contenders: dict, device: object, warmup: int, rounds: int, iters: int) -> dict[str, list[float]]:
    return {"plugin": [0.5], "anomalib": [1.0]}


@pytest.mark.parametrize(("precision", "channels_last"), [("32-true", False), ("bf16-mixed", True)])
def test_both_draems_step_at_equal_widths(
    textures: Path, monkeypatch: pytest.MonkeyPatch, precision: str, channels_last: bool
) -> None:
    monkeypatch.setattr(train_step, "time_alternately", fixed_times)
    (row,) = TrainStep(
        source=str(textures),
        batch_size=2,
        image_size=64,
        reconstructive_width=4,
        discriminative_width=4,
        precision=precision,
        channels_last=channels_last,
    ).measure()
    assert set(TrainStep.COLUMNS) <= row.keys()
    assert row["precision"] == precision and row["channels_last"] is channels_last and row["widths"] == "4/4"
    assert row["plugin_params"] == row["anomalib_params"]  # equal widths: the same architecture size
    assert row["plugin_images_per_s"] == pytest.approx(4.0) and row["ratio"] == pytest.approx(2.0)
    assert "4/4" in row["anomalib_widths_note"]
    assert row["plugin_state_mib"] == pytest.approx(row["anomalib_state_mib"], rel=0.01)  # same parameters + Adam
