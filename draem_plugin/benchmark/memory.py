"""Memory of a benchmark step, and a guard against the heap growth of PatchCore's coreset selection on glibc.

Example:
    >>> import torch
    >>> with PeakMemory(torch.device("cpu")) as peak:
    ...     x = torch.ones(2**24)  # 64 MiB
    >>> 60 < peak.mib < 200
    True
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import torch

from ..throughput import synchronize

__all__ = ["PeakMemory", "coreset_memory_guard", "set_mmap_threshold"]


def _rss_bytes() -> int:
    """Resident set size of this process in bytes (``/proc/self/statm`` on Linux, else psutil)."""
    try:
        with Path("/proc/self/statm").open(encoding="ascii") as file:
            return int(file.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import psutil

        return psutil.Process().memory_info().rss


def _trim_heap() -> None:
    """Return freed heap memory to the OS (glibc ``malloc_trim``), so that an RSS baseline is not inflated."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


#: glibc's ``mallopt`` parameter number of ``M_MMAP_THRESHOLD``.
_M_MMAP_THRESHOLD = -3


def set_mmap_threshold(threshold: int) -> bool:
    """Fix glibc's mmap threshold at ``threshold`` bytes (no more dynamic adjustment); ``False`` without glibc."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        return bool(ctypes.CDLL("libc.so.6").mallopt(_M_MMAP_THRESHOLD, int(threshold)))
    except (OSError, AttributeError):
        return False


@contextlib.contextmanager
def coreset_memory_guard(threshold: int = 2**20, after: int = 32 * 2**20) -> Iterator[None]:
    """Map every allocation above ``threshold`` while the block runs (PatchCore / PaDiM fitting), then fix ``after``.

    anomalib's PatchCore coreset loop (``KCenterGreedy``) allocates one ``N x d`` temporary per selected point. With
    glibc's dynamic mmap threshold those come from the heap, which was seen to grow without bound on this project's
    machines (22 GB RSS for 16k patches, then the OOM killer); mapped, each is returned at once. ``after`` (glibc's
    own ceiling for its dynamic threshold on 64-bit) applies once the block is left, as glibc cannot be put back
    into dynamic mode.
    """
    set_mmap_threshold(threshold)
    try:
        yield
    finally:
        set_mmap_threshold(after)


class PeakMemory:
    """Peak memory above the level at entry, while the ``with`` block runs.

    CUDA: ``torch.cuda.max_memory_allocated`` minus ``memory_allocated`` at entry (tensors only).
    CPU: the process RSS, sampled every ``interval`` seconds by a thread, minus the RSS at entry (after a garbage
    collection and ``malloc_trim``); this counts every allocation, torch's and others'.

    """

    def __init__(self, device: torch.device, interval: float = 0.0005) -> None:
        self.device = device
        self.interval = interval
        self.bytes = 0
        self._baseline = 0
        self._peak = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        while not self._stop.is_set():
            self._peak = max(self._peak, _rss_bytes())
            time.sleep(self.interval)

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._baseline = torch.cuda.memory_allocated(self.device)
        else:
            _trim_heap()
            self._baseline = self._peak = _rss_bytes()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            synchronize(self.device)
            self.bytes = torch.cuda.max_memory_allocated(self.device) - self._baseline
        else:
            self._stop.set()
            if self._thread is not None:
                self._thread.join()
            self._peak = max(self._peak, _rss_bytes())
            self.bytes = self._peak - self._baseline

    @property
    def mib(self) -> float:
        """:attr:`bytes` in MiB."""
        return self.bytes / 2**20
