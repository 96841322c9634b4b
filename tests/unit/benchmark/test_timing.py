"""Timing alternately and summarising, on a fake clock."""

from __future__ import annotations

import pytest
import torch

from draem_plugin.benchmark import timing
from draem_plugin.benchmark.timing import summarise, time_alternately


def test_contenders_alternate_and_each_call_is_timed(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    durations = {"a": 1.0, "b": 3.0}
    now = [0.0]

    def contender(name: str):
        def run() -> None:
            calls.append(name)
            now[0] += durations[name]

        return run

    monkeypatch.setattr(timing.time, "perf_counter", lambda: now[0])
    times = time_alternately(
        {"a": contender("a"), "b": contender("b")}, torch.device("cpu"), warmup=1, rounds=2, iters=2
    )
    assert calls == ["a", "b", "a", "a", "b", "b", "b", "b", "a", "a"]  # warm-up, then the order flips every round
    assert times == {"a": [1.0] * 4, "b": [3.0] * 4}


def test_summary_of_known_times() -> None:
    summary = summarise([0.1, 0.4, 0.2, 0.3], batch_size=5)
    assert summary["images_per_s"] == pytest.approx(5 / 0.25)
    assert summary["latency_ms_mean"] == pytest.approx(250.0)
    assert summary["latency_ms_p50"] == pytest.approx(250.0)
    assert summary["latency_ms_p90"] == pytest.approx(400.0)
    assert summary["batches"] == 4
