"""``pip install .`` and ``pip install -e .`` both ship the autoload hook, through the public build hooks only.

Both wheels are built with the project's build backend (the PEP 517 / 660 hooks pip calls), checked against the wheel
format (the hook at the root, listed in ``RECORD`` with its hash), and installed into a fresh virtual environment
where the interpreter must arm the hook at start-up.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest
from support import REPO

HOOK = "draem_plugin_autoload.pth"
BUILD = """
import sys
sys.path.insert(0, "_build")
import draem_plugin_build
print(getattr(draem_plugin_build, sys.argv[1])(sys.argv[2]))
"""
#: Run in the fresh environment: where the hook module came from, and whether the .pth armed its finder.
PROBE = "import sys, _draem_plugin_autoload as a; print(a.__file__); print(a._Finder in sys.meta_path)"


def build(hook: str, out: Path) -> Path:
    result = subprocess.run(
        [sys.executable, "-c", BUILD, hook, str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return out / result.stdout.strip().splitlines()[-1]


def assert_hook_is_recorded(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        content = archive.read(HOOK)
        (record,) = [name for name in archive.namelist() if name.endswith(".dist-info/RECORD")]
        rows = {row[0]: row for row in csv.reader(io.StringIO(archive.read(record).decode()))}
    assert content.decode().strip() == "import _draem_plugin_autoload"
    digest = base64.urlsafe_b64encode(hashlib.sha256(content).digest()).rstrip(b"=").decode()
    assert rows[HOOK] == [HOOK, f"sha256={digest}", str(len(content))]


@pytest.mark.parametrize(("hook", "module_home"), [("build_wheel", "site-packages"), ("build_editable", "repository")])
def test_the_installed_interpreter_arms_the_hook(tmp_path: Path, hook: str, module_home: str) -> None:
    wheel = build(hook, tmp_path / "wheels")
    assert_hook_is_recorded(wheel)
    environment = tmp_path / "env"
    venv.create(environment, with_pip=True)
    python = environment / "bin" / "python"
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    probe = subprocess.run(
        [str(python), "-c", PROBE], cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
    )
    assert probe.returncode == 0, probe.stderr[-3000:]
    location, armed = probe.stdout.split()
    assert armed == "True"  # the .pth ran at start-up; the hook waits for anomalib.models
    home = Path(location).resolve().parent
    assert (home == REPO) if module_home == "repository" else (home.name == "site-packages")
