"""Make ``DraemPlugin`` visible to anomalib without an explicit ``import draem_plugin``.

anomalib 2.7 has no plugin registry: its CLI, ``get_model`` and the benchmark pipeline find models among the
``AnomalibModule`` subclasses that are already imported. The installed ``draem_plugin_autoload.pth`` imports this
module at interpreter start-up; it imports nothing heavy, it only waits until ``anomalib.models`` has been imported
(by the ``anomalib`` command or by any program that uses anomalib's models) and then imports ``draem_plugin``.
Set ``DRAEM_PLUGIN_AUTOLOAD=0`` to switch it off.
"""

from __future__ import annotations

import os
import sys
from importlib.machinery import ModuleSpec, PathFinder
from types import ModuleType

TRIGGER = "anomalib.models"


class _LoadPluginAfter:
    """Loader wrapper: execute ``anomalib.models``, then import ``draem_plugin``."""

    def __init__(self, loader: object) -> None:
        self._loader = loader

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)  # type: ignore[attr-defined]

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)  # type: ignore[attr-defined]
        # The import system binds ``anomalib.models`` on its parent only after this returns; bind it now so the
        # plugin's own ``import anomalib.models`` sees a complete package.
        parent, _, child = module.__name__.rpartition(".")
        setattr(sys.modules[parent], child, module)
        try:
            import draem_plugin  # noqa: F401, PLC0415  (registers DraemPlugin with anomalib)
        except Exception as error:  # noqa: BLE001  (a broken plugin must not break anomalib itself)
            import warnings  # noqa: PLC0415

            warnings.warn(
                f"draem_plugin could not be imported ({type(error).__name__}: {error}); DraemPlugin is unavailable "
                "in this program. Reinstall it with `pip install -e .` or set DRAEM_PLUGIN_AUTOLOAD=0.",
                RuntimeWarning,
                stacklevel=2,
            )

    def __getattr__(self, name: str) -> object:
        return getattr(self._loader, name)


class _Finder:
    """One-shot meta-path finder for ``anomalib.models``."""

    @classmethod
    def find_spec(cls, name: str, path: object = None, target: object = None) -> ModuleSpec | None:
        if name != TRIGGER:
            return None
        sys.meta_path.remove(cls)  # type: ignore[arg-type]
        spec = PathFinder.find_spec(name, path, target)  # type: ignore[arg-type]
        if spec is not None and spec.loader is not None:
            spec.loader = _LoadPluginAfter(spec.loader)  # type: ignore[assignment]
        return spec


def install() -> None:
    """Arm the hook (idempotent); does nothing when ``DRAEM_PLUGIN_AUTOLOAD=0`` or the trigger is already loaded."""
    if os.environ.get("DRAEM_PLUGIN_AUTOLOAD", "1") == "0" or _Finder in sys.meta_path:
        return
    if TRIGGER in sys.modules:
        return
    sys.meta_path.insert(0, _Finder)  # type: ignore[arg-type]


install()
