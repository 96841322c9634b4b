"""draem-bench infer: the models time on the same batch; the ratio is DraemPlugin's images/s over each model's."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import BACKBONE

from draem_plugin.benchmark import infer
from draem_plugin.benchmark.infer import Infer


def fixed_times(contenders: dict, device: object, warmup: int, rounds: int, iters: int) -> dict[str, list[float]]:
    for run in contenders.values():
        run()
    per_batch = {"DraemPlugin": 0.1, "Draem": 0.3, "Patchcore": 0.2, "Padim": 0.05}
    return {name: [per_batch[name]] for name in contenders}


def test_both_draems_without_shared(textures: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(infer, "time_alternately", fixed_times)
    rows = Infer(
        models=["DraemPlugin", "Draem"],
        source=str(textures),
        batch_size=2,
        image_size=64,
        reconstructive_width=4,
        discriminative_width=4,
    ).measure()
    assert [row["model"] for row in rows] == ["DraemPlugin", "Draem"]
    assert [row["images_per_s"] for row in rows] == pytest.approx([20.0, 2 / 0.3])
    assert [row["ratio"] for row in rows] == pytest.approx([1.0, 3.0])
    assert rows[0]["params"] == rows[1]["params"]


@pytest.mark.shared
def test_all_four_models(textures: Path, offline_backbone: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(infer, "time_alternately", fixed_times)
    rows = Infer(
        source=str(textures),
        backbone=BACKBONE,
        batch_size=2,
        fit_images=4,
        image_size=64,
        reconstructive_width=4,
        discriminative_width=4,
    ).measure()
    assert [row["model"] for row in rows] == ["DraemPlugin", "Draem", "Patchcore", "Padim"]
    assert "memory bank" in rows[2]["details"] and BACKBONE in rows[2]["details"]
    assert [row["ratio"] for row in rows] == pytest.approx([1.0, 3.0, 2.0, 0.5])
