"""The fixes to anomalib's benchmark pipeline: union of keys, and apply / remove restore anomalib's originals."""

from __future__ import annotations

from anomalib.pipelines.benchmark.generator import BenchmarkJobGenerator
from anomalib.pipelines.benchmark.job import BenchmarkJob
from anomalib.pipelines.benchmark.pipeline import Benchmark

from draem_plugin.benchmark import anomalib_patch
from draem_plugin.benchmark.anomalib_patch import _collect


def test_collect_keeps_rows_whose_keys_differ() -> None:
    frame = _collect([{"model": "Padim", "image_AUROC": 0.9}, {"model": "DraemPlugin", "init_args.width": 4}])
    assert list(frame.columns) == ["model", "image_AUROC", "init_args.width"]
    assert frame["init_args.width"].tolist() == [None, 4]
    assert len(_collect([])) == 0


def test_apply_and_remove_swap_exactly_four_methods() -> None:
    was_applied = anomalib_patch.is_applied()
    anomalib_patch.remove()
    originals = (
        BenchmarkJob.__dict__["collect"],
        BenchmarkJob.__dict__["save"],
        BenchmarkJobGenerator.__dict__["generate_jobs"],
        Benchmark.__dict__.get("run"),
    )
    try:
        assert anomalib_patch.apply() and anomalib_patch.apply()  # idempotent
        assert BenchmarkJob.collect is _collect and Benchmark.run is anomalib_patch._run
        anomalib_patch.remove()
        assert (
            BenchmarkJob.__dict__["collect"],
            BenchmarkJob.__dict__["save"],
            BenchmarkJobGenerator.__dict__["generate_jobs"],
            Benchmark.__dict__.get("run"),
        ) == originals
        assert not anomalib_patch.is_applied()
    finally:
        if was_applied:
            anomalib_patch.apply()
