"""Tables and result files."""

from __future__ import annotations

import json
import math
from pathlib import Path

from draem_plugin.benchmark.report import format_table, machine_info, write_csv, write_json, write_markdown


def test_tables_format_numbers_by_size() -> None:
    rows = [{"name": "a", "x": 0.123456, "y": 12.34, "z": 0.001}, {"name": "b", "x": math.nan, "y": None, "z": 3}]
    assert format_table(rows, ["name", "x", "y", "z"]).splitlines() == [
        "| name | x | y | z |",
        "|---|---|---|---|",
        "| a | 0.123 | 12.3 | 1.00e-03 |",
        "| b | n/a | n/a | 3 |",
    ]
    assert format_table(rows, ["name", "y"], markdown=False).splitlines() == ["name  y   ", "a     12.3", "b     n/a "]


def test_json_holds_the_command_machine_settings_and_plain_rows(tmp_path: Path) -> None:
    import torch

    machine = machine_info()
    path = write_json(
        tmp_path / "r.json", "demo", {"root": Path("/data")}, [{"v": torch.tensor([1.5]), "n": math.inf}], machine
    )
    payload = json.loads(path.read_text())
    assert payload["benchmark"] == "demo" and payload["settings"] == {"root": "/data"}
    assert payload["rows"] == [{"v": [1.5], "n": None}]
    assert payload["machine"]["torch"] == torch.__version__ and "command" in payload


def test_csv_and_markdown_files_hold_the_columns_asked_for(tmp_path: Path) -> None:
    rows = [{"model": "a", "x": 0.5, "hidden": 1}]
    csv_text = write_csv(rows, ["model", "x"], tmp_path / "sub" / "t.csv").read_text()
    assert csv_text.splitlines() == ["model,x", "a,0.5"]
    markdown = write_markdown(rows, ["model", "x"], tmp_path / "t.md", header="Settings: s.").read_text()
    assert markdown == "Settings: s.\n\n| model | x |\n|---|---|\n| a | 0.500 |\n"
