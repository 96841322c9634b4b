"""How ``draem-bench`` reports: the machine a figure was measured on, tables, and JSON result files.

Example:
    >>> print(format_table([{"model": "DraemPlugin", "images_per_s": 12.5}], ["model", "images_per_s"]))
    | model | images_per_s |
    |---|---|
    | DraemPlugin | 12.5 |
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import platform
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["format_table", "machine_info", "print_report", "write_csv", "write_json", "write_markdown"]


def machine_info(cuda: bool = False) -> dict[str, Any]:
    """What the numbers were measured on: CPU model, cores, torch threads, GPU (with ``cuda``), versions, load."""
    import torch

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
        "gpu": torch.cuda.get_device_name() if cuda else None,
        "cuda": torch.version.cuda if cuda else None,
    }
    with contextlib.suppress(ImportError):
        import anomalib

        info["anomalib"] = anomalib.__version__
    return info


def _cell(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        if value != 0 and abs(value) < 0.01:
            return f"{value:.2e}"
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return "n/a" if value is None else str(value)


def format_table(rows: Sequence[dict[str, Any]], columns: Sequence[str], markdown: bool = True) -> str:
    """A markdown (or aligned plain-text) table of ``columns`` of ``rows``."""
    cells = [[_cell(row.get(column)) for column in columns] for row in rows]
    if markdown:
        lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
        return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in cells])
    widths = [max(len(column), *(len(row[i]) for row in cells)) for i, column in enumerate(columns)]
    lines = ["  ".join(column.ljust(widths[i]) for i, column in enumerate(columns))]
    lines += ["  ".join(value.ljust(widths[i]) for i, value in enumerate(row)) for row in cells]
    return "\n".join(lines)


def print_report(
    title: str, rows: list[dict[str, Any]], columns: Sequence[str], settings: dict[str, Any], machine: dict[str, Any]
) -> None:
    """Print the title, the machine, the settings and the table."""
    gpu = f", GPU {machine['gpu']}" if machine.get("gpu") else ", no GPU"
    print(f"\n## {title}\n")
    print(
        f"machine: {machine['cpu']} ({machine['cpu_count']} cores, {machine['torch_threads']} torch threads){gpu}; "
        f"torch {machine['torch']}, anomalib {machine.get('anomalib', '?')}"
    )
    print("settings: " + ", ".join(f"{k}={v}" for k, v in settings.items() if v is not None) + "\n")
    print(format_table(rows, columns))


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "tolist"):  # tensors and numpy values
        return _jsonable(value.tolist())
    return value


def write_json(
    path: str | Path, benchmark: str, settings: dict[str, Any], rows: list[dict[str, Any]], machine: dict[str, Any]
) -> Path:
    """Write ``{"benchmark", "command", "machine", "settings", "rows"}`` to ``path`` (parents created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "benchmark": benchmark,
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "machine": machine,
        "settings": settings,
        "rows": rows,
    }
    path.write_text(json.dumps(_jsonable(payload), indent=2) + "\n", encoding="utf-8")
    return path


def write_csv(rows: list[dict[str, Any]], columns: Sequence[str], path: Path) -> Path:
    """Write ``columns`` of ``rows`` to the CSV file ``path`` (parents created; other keys left out)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_markdown(rows: list[dict[str, Any]], columns: Sequence[str], path: Path, header: str = "") -> Path:
    """Write the markdown table of ``columns`` (after an optional header paragraph) to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text((header.rstrip() + "\n\n" if header else "") + format_table(rows, columns) + "\n", encoding="utf-8")
    return path
