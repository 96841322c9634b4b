"""Timing contenders fairly: alternately, after warm-up, synchronised, summarised by the median.

Example:
    >>> import torch
    >>> times = time_alternately({"a": lambda: None, "b": lambda: None}, torch.device("cpu"), warmup=1, rounds=2,
    ...                          iters=2)
    >>> sorted(times), len(times["a"])
    (['a', 'b'], 4)
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch

from ..throughput import synchronize

__all__ = ["summarise", "time_alternately"]


def time_alternately(
    contenders: dict[str, Callable[[], Any]],
    device: torch.device,
    warmup: int,
    rounds: int,
    iters: int,
) -> dict[str, list[float]]:
    """Time each contender's ``fn`` (one batch per call) alternately, after ``warmup`` calls each.

    Each of ``rounds`` rounds runs ``iters`` calls of every contender; the order of the contenders is reversed every
    other round, so that a slow drift of the machine (other processes, clocks, caches) hits both alike.

    Returns:
        The per-call seconds of every contender, all rounds together.
    """
    names = list(contenders)
    for name in names:
        for _ in range(warmup):
            contenders[name]()
        synchronize(device)
    times: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(rounds):
        for name in names if round_index % 2 == 0 else names[::-1]:
            for _ in range(iters):
                synchronize(device)
                start = time.perf_counter()
                contenders[name]()
                synchronize(device)
                times[name].append(time.perf_counter() - start)
    return times


def summarise(times: Sequence[float], batch_size: int) -> dict[str, float]:
    """Images/s (batch size over the median batch time) and batch latency statistics in ms.

    Example:
        >>> summarise([0.1, 0.2, 0.3], batch_size=8)["images_per_s"]
        40.0
    """
    ordered = sorted(times)
    median = statistics.median(ordered)
    p90 = ordered[min(len(ordered) - 1, math.ceil(0.9 * len(ordered)) - 1)]
    return {
        "images_per_s": batch_size / median,
        "latency_ms_mean": 1e3 * statistics.fmean(ordered),
        "latency_ms_p50": 1e3 * median,
        "latency_ms_p90": 1e3 * p90,
        "batches": len(ordered),
    }
