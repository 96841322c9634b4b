"""Peak memory of a block, and the mmap guard."""

from __future__ import annotations

import sys

import pytest
import torch

from draem_plugin.benchmark.memory import PeakMemory, coreset_memory_guard, set_mmap_threshold


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the RSS from /proc")
def test_peak_memory_sees_a_known_allocation() -> None:
    with PeakMemory(torch.device("cpu")) as peak:
        block = torch.ones(2**25)  # 128 MiB, touched
        del block
    assert 120 < peak.mib < 400
    with PeakMemory(torch.device("cpu")) as idle:
        pass
    assert idle.mib < 64


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_the_guard_sets_the_mmap_threshold() -> None:
    assert set_mmap_threshold(2**20)
    with coreset_memory_guard():
        x = torch.ones(2**20)
    assert x.sum() == 2**20
