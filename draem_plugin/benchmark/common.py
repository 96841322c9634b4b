"""Shared helpers of the ``draem-bench`` subcommands: devices, timing, memory, tables, result files, offline set-up."""

from __future__ import annotations

import contextlib
import ctypes
import gc
import json
import logging
import math
import os
import platform
import statistics
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import torch

__all__ = [
    "REPO_ROOT",
    "SHARED",
    "Device",
    "PeakMemory",
    "as_list",
    "default_texture_source",
    "coreset_memory_guard",
    "set_mmap_threshold",
    "format_table",
    "machine_info",
    "quiet",
    "resolve_device",
    "summarise",
    "sync",
    "time_alternately",
    "use_hf_cache",
    "write_json",
]

logger = logging.getLogger(__name__)

Device = Literal["cpu", "cuda"]

#: Repository root (for a source checkout) and the optional ``../shared`` folder beside it.
REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED = REPO_ROOT.parent / "shared"
_TEXTURE_CANDIDATES = (SHARED / "data" / "textures" / "dtd_lowres", Path("datasets/dtd/images"), Path("datasets/dtd"))


def as_list(value: Any | Sequence[Any]) -> list[Any]:  # noqa: ANN401
    """``[value]`` for a single value, ``list(value)`` for a list or tuple."""
    return list(value) if isinstance(value, (list, tuple)) else [value]


def resolve_device(device: str) -> torch.device:
    """``torch.device(device)``; ``cuda`` without a usable GPU raises a clear error."""
    if device not in ("cpu", "cuda"):
        msg = f"device must be 'cpu' or 'cuda', got {device!r}."
        raise ValueError(msg)
    if device == "cuda" and not torch.cuda.is_available():
        msg = "--device cuda was requested but torch.cuda.is_available() is False on this machine."
        raise RuntimeError(msg)
    return torch.device(device)


def sync(device: torch.device) -> None:
    """Wait for queued kernels on ``device`` (CUDA), so that wall-clock timings are complete."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def default_texture_source(source: str | Path | None) -> Path:
    """The texture folder: ``source`` if given, else ``../shared/data/textures/dtd_lowres`` or ``./datasets/dtd``."""
    if source is not None:
        path = Path(source).expanduser()
        if not path.exists():
            msg = f"texture source {path} does not exist; pass --source DIR (a folder of texture images)."
            raise FileNotFoundError(msg)
        return path
    for candidate in _TEXTURE_CANDIDATES:
        if candidate.is_dir():
            return candidate
    msg = (
        "no texture folder given and none found at "
        + ", ".join(str(c) for c in _TEXTURE_CANDIDATES)
        + "; pass --source DIR (e.g. the DTD 'images' folder): both augmenters must draw real textures."
    )
    raise FileNotFoundError(msg)


def use_hf_cache(hf_home: str | Path | None) -> None:
    """Load ImageNet backbones from the local Hugging Face cache ``hf_home`` only (no network).

    Sets ``HF_HOME`` and ``HF_HUB_OFFLINE=1`` for this process and its children and, because ``huggingface_hub``
    reads them at import (which has already happened by the time a subcommand runs), also its module constants.
    ``None`` leaves the environment as it is: anomalib's defaults then download as usual where there is a network.
    """
    if hf_home is None:
        return
    home = Path(hf_home).expanduser().resolve()
    if not (home / "hub").is_dir():
        msg = f"--hf_home {home} is not a Hugging Face cache (it has no 'hub' folder)."
        raise FileNotFoundError(msg)
    os.environ["HF_HOME"] = str(home)
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ.pop("HF_HUB_CACHE", None)
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None:
        constants.HF_HOME = str(home)
        constants.HF_HUB_CACHE = str(home / "hub")
        constants.HF_HUB_OFFLINE = True


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence the warnings and info logs that model construction and trainer-less steps emit."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        levels = {}
        for name in ("lightning", "lightning.pytorch", "lightning.fabric", "anomalib", "draem_plugin", "timm"):
            log = logging.getLogger(name)
            levels[name] = log.level
            log.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for name, level in levels.items():
                logging.getLogger(name).setLevel(level)


# --------------------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------------------
def _time_batches(fn: Callable[[], Any], iters: int, device: torch.device) -> list[float]:
    """Seconds of each of ``iters`` calls of ``fn``, synchronised around each call."""
    times = []
    for _ in range(iters):
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return times


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
        sync(device)
    times: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(rounds):
        order = names if round_index % 2 == 0 else names[::-1]
        for name in order:
            times[name].extend(_time_batches(contenders[name], iters, device))
    return times


def summarise(times: Sequence[float], batch_size: int) -> dict[str, float]:
    """Images/s (batch size over the median batch time) and batch latency statistics in ms."""
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


# --------------------------------------------------------------------------------------------------
# Memory
# --------------------------------------------------------------------------------------------------
def _rss_bytes() -> int:
    """Resident set size of this process in bytes (``/proc/self/statm`` on Linux, else psutil)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as file:  # noqa: PTH123
            return int(file.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import psutil  # noqa: PLC0415

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

    Example:
        >>> with PeakMemory(torch.device("cpu")) as peak:
        ...     x = torch.ones(2**22)
        >>> peak.bytes >= 0
        True
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
            sync(self.device)
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
            sync(self.device)
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


# --------------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------------
def machine_info(device: torch.device | None = None) -> dict[str, Any]:
    """What the numbers were measured on: CPU model, cores, torch threads, GPU, versions."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    info: dict[str, Any] = {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "load_average": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
    }
    with contextlib.suppress(Exception):
        import anomalib  # noqa: PLC0415

        info["anomalib"] = anomalib.__version__
    if device is not None and device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        info["cuda"] = torch.version.cuda
    else:
        info["gpu"] = None
    return info


def _cell(value: Any) -> str:  # noqa: ANN401
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        if value != 0 and abs(value) < 0.01:
            return f"{value:.2e}"
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    if value is None:
        return "n/a"
    return str(value)


def format_table(rows: Sequence[dict[str, Any]], columns: Sequence[str], markdown: bool = True) -> str:
    """A markdown (or aligned plain-text) table of ``columns`` of ``rows``."""
    cells = [[_cell(row.get(column)) for column in columns] for row in rows]
    if markdown:
        lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in cells]
        return "\n".join(lines)
    widths = [max(len(column), *(len(row[i]) for row in cells)) for i, column in enumerate(columns)]
    lines = ["  ".join(column.ljust(widths[i]) for i, column in enumerate(columns))]
    lines += ["  ".join(value.ljust(widths[i]) for i, value in enumerate(row)) for row in cells]
    return "\n".join(lines)


def _jsonable(value: Any) -> Any:  # noqa: ANN401
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, torch.Tensor):
        return _jsonable(value.tolist())
    return value


def write_json(
    path: str | Path,
    benchmark: str,
    settings: dict[str, Any],
    rows: list[dict[str, Any]],
    **extra: Any,  # noqa: ANN401
) -> Path:
    """Write ``{"benchmark", "command", "machine", "settings", "rows", ...}`` to ``path`` (parents created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "benchmark": benchmark,
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "machine": machine_info(torch.device("cuda") if "cuda" in as_list(settings.get("device", "cpu")) else None),
        "settings": settings,
        "rows": rows,
        **extra,
    }
    path.write_text(json.dumps(_jsonable(payload), indent=2) + "\n", encoding="utf-8")
    return path
