"""PEP 517 / 660 build backend: setuptools' own, plus the ``draem_plugin_autoload.pth`` hook at the wheel's root.

setuptools can only put packages, modules and data files into a wheel; a ``.pth`` file has to sit at the root of
site-packages, so this backend takes the wheel (or the editable wheel) that ``setuptools.build_meta`` builds and adds
the hook and its ``RECORD`` line. It uses only the public build hooks and the wheel format, so it works for
``pip install .`` and ``pip install -e .`` with any setuptools release that implements PEP 517 and PEP 660.
"""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path

from setuptools import build_meta
from setuptools.build_meta import (  # noqa: F401  (the hooks pip calls, re-exported unchanged)
    build_sdist,
    get_requires_for_build_editable,
    get_requires_for_build_sdist,
    get_requires_for_build_wheel,
    prepare_metadata_for_build_editable,
    prepare_metadata_for_build_wheel,
)

HOOK = Path(__file__).resolve().parents[1] / "draem_plugin_autoload.pth"


def _add_hook(wheel: Path) -> None:
    """Rewrite ``wheel`` with the hook at its root and a ``RECORD`` that lists it."""
    content = HOOK.read_bytes()
    digest = base64.urlsafe_b64encode(hashlib.sha256(content).digest()).rstrip(b"=").decode()
    with zipfile.ZipFile(wheel) as source:
        entries = [(info, source.read(info)) for info in source.infolist()]
    rewritten = wheel.with_suffix(".tmp")
    with zipfile.ZipFile(rewritten, "w", zipfile.ZIP_DEFLATED) as target:
        for info, data in entries:
            if info.filename.endswith(".dist-info/RECORD"):
                data = data.rstrip(b"\n") + f"\n{HOOK.name},sha256={digest},{len(content)}\n".encode()
                target.writestr(HOOK.name, content)
            target.writestr(info, data)
    rewritten.replace(wheel)


def build_wheel(wheel_directory: str, config_settings: dict | None = None, metadata_directory: str | None = None) -> str:
    """setuptools' wheel with the hook added."""
    name = build_meta.build_wheel(wheel_directory, config_settings, metadata_directory)
    _add_hook(Path(wheel_directory) / name)
    return name


def build_editable(
    wheel_directory: str, config_settings: dict | None = None, metadata_directory: str | None = None
) -> str:
    """setuptools' editable wheel with the hook added."""
    name = build_meta.build_editable(wheel_directory, config_settings, metadata_directory)
    _add_hook(Path(wheel_directory) / name)
    return name
