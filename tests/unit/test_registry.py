"""Importing the plugin adds two names to anomalib and changes nothing else; the names resolve."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from anomalib.models import get_model
from support import TINY

from draem_plugin import DraemPlugin

#: Snapshot every attribute of every loaded anomalib module and of the classes defined there, import the plugin,
#: and print what was added, removed or replaced.
SNAPSHOT = """
import json, sys
import anomalib.data, anomalib.engine, anomalib.models, anomalib.pipelines.benchmark.pipeline

def snapshot():
    seen = {}
    for name, module in list(sys.modules.items()):
        if not name.startswith("anomalib") or module is None:
            continue
        for attr, value in list(vars(module).items()):
            seen[f"{name}.{attr}"] = id(value)
            if isinstance(value, type) and value.__module__ == name:
                for member, item in list(vars(value).items()):
                    seen[f"{name}.{attr}.{member}"] = id(item)
    return seen

before = snapshot()
modules_before = set(sys.modules)
all_before = {m: list(getattr(sys.modules[m], "__all__", [])) for m in ("anomalib.models", "anomalib.data")}
import draem_plugin
after = snapshot()
changed = sorted(k for k in before.keys() & after.keys() if before[k] != after[k])
removed = sorted(before.keys() - after.keys())
added = sorted(k for k in after.keys() - before.keys() if k.rsplit(".", 1)[0] in modules_before)
all_added = {m: sorted(set(sys.modules[m].__all__) - set(v)) for m, v in all_before.items()}
print(json.dumps({"changed": changed, "removed": removed, "added": added, "all_added": all_added}))
"""


def test_importing_the_plugin_adds_two_names_and_patches_nothing(tmp_path: Path) -> None:
    env = {**os.environ, "DRAEM_PLUGIN_AUTOLOAD": "0", "PYTHONWARNINGS": "ignore"}
    result = subprocess.run(
        [sys.executable, "-c", SNAPSHOT],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["removed"] == []
    assert report["added"] == ["anomalib.data.SurfaceDemo", "anomalib.models.DraemPlugin"]
    # Only the two modules' __all__ lists grow (in place), by the two names.
    assert set(report["changed"]) <= {"anomalib.models.__all__", "anomalib.data.__all__"}
    assert report["all_added"] == {"anomalib.models": ["DraemPlugin"], "anomalib.data": ["SurfaceDemo"]}


def test_get_model_resolves_the_plugin_by_name_and_by_dict() -> None:
    assert isinstance(get_model("DraemPlugin", **TINY), DraemPlugin)
    assert isinstance(get_model("draem_plugin", **TINY), DraemPlugin)
    assert isinstance(get_model({"class_path": "DraemPlugin", "init_args": TINY}), DraemPlugin)
