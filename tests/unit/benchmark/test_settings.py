"""The shared settings type: devices, texture sources, the offline hub, and what executing a benchmark writes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest
import torch

from draem_plugin.benchmark.settings import BenchSettings, default_texture_source, resolve_device, use_hf_cache


@dataclass
class Fake(BenchSettings):
    """A benchmark with known rows.

    Args:
        rows: How many rows to return.
    """

    NAME: ClassVar[str] = "fake"
    TITLE: ClassVar[str] = "fake: known rows"
    COLUMNS: ClassVar[tuple[str, ...]] = ("model", "value")

    rows: int = 2

    def measure(self) -> list[dict[str, Any]]:
        return [{"model": f"m{i}", "value": i / 4, "hidden": i} for i in range(self.rows)]


def test_execute_prints_the_table_and_writes_rows_machine_and_settings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "out" / "fake.json"
    rows = Fake(image_size=64, threads=1, json=str(path)).execute()
    assert rows == [{"model": "m0", "value": 0.0, "hidden": 0}, {"model": "m1", "value": 0.25, "hidden": 1}]
    out = capsys.readouterr().out
    assert "## fake: known rows" in out and "| model | value |" in out and "| m1 | 0.250 |" in out
    assert "image_size=64" in out and torch.get_num_threads() == 1
    payload = json.loads(path.read_text())
    assert payload["benchmark"] == "fake" and payload["rows"] == rows
    assert payload["settings"]["image_size"] == 64 and payload["settings"]["rows"] == 2
    assert payload["machine"]["cpu_count"] >= 1 and payload["machine"]["gpu"] is None


def test_devices_and_sources_fail_clearly(tmp_path: Path) -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="device must be 'cpu' or 'cuda', got 'tpu'"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match=r"torch.cuda.is_available\(\) is False"):
            resolve_device("cuda")
    assert default_texture_source(tmp_path) == tmp_path
    with pytest.raises(FileNotFoundError, match="pass --source DIR"):
        default_texture_source(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="is not a Hugging Face cache"):
        use_hf_cache(tmp_path)
