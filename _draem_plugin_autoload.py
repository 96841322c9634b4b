"""Make ``DraemPlugin`` visible to anomalib without an explicit ``import draem_plugin``.

anomalib 2.7 has no plugin registry: its CLI, ``get_model`` and the benchmark pipeline find models among the
``AnomalibModule`` subclasses that are already imported. The installed ``draem_plugin_autoload.pth`` imports this
module at interpreter start-up. It imports nothing heavy; it waits until ``anomalib.models`` has been imported (by the
``anomalib`` command or by any program that uses anomalib's models) and then imports ``draem_plugin``, which adds the
names. When anomalib's benchmark pipeline module is loaded, it applies the plugin's fixes to that pipeline
(:mod:`draem_plugin.benchmark.anomalib_patch`; the README lists them). Set ``DRAEM_PLUGIN_AUTOLOAD=0`` to switch both
off.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Callable, Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import ClassVar


def _import_plugin() -> None:
    import draem_plugin  # noqa: F401  (registers DraemPlugin with anomalib)


def _patch_benchmark() -> None:
    from draem_plugin.benchmark import anomalib_patch

    anomalib_patch.apply()


#: Module -> what to run once it has been imported. The benchmark patch waits for anomalib's pipeline module,
#: which cannot be imported while ``anomalib.engine`` (which imports ``anomalib.models``) is still initialising.
TRIGGERS: dict[str, Callable[[], None]] = {
    "anomalib.models": _import_plugin,
    "anomalib.pipelines.benchmark": _patch_benchmark,
}


class _RunAfterLoading:
    """Loader wrapper: execute the trigger module with its own loader, then run its action."""

    def __init__(self, loader: object) -> None:
        self._loader = loader

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)  # type: ignore[attr-defined]

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)  # type: ignore[attr-defined]  (if this raises, the trigger stays armed)
        action = _Finder.pending.pop(module.__name__, None)
        if not _Finder.pending and _Finder in sys.meta_path:
            sys.meta_path.remove(_Finder)  # type: ignore[arg-type]
        # The import system binds the module on its parent only after this returns; bind it now so the
        # plugin's own imports see a complete package.
        parent, _, child = module.__name__.rpartition(".")
        setattr(sys.modules[parent], child, module)
        if action is None:
            return
        try:
            action()
        except Exception as error:  # noqa: BLE001  (a broken plugin must not break anomalib itself)
            warnings.warn(
                f"draem_plugin could not be loaded ({type(error).__name__}: {error}); DraemPlugin is unavailable "
                "in this program. Reinstall it with `pip install -e .` or set DRAEM_PLUGIN_AUTOLOAD=0.",
                RuntimeWarning,
                stacklevel=2,
            )

    def __getattr__(self, name: str) -> object:
        return getattr(self._loader, name)


class _Finder:
    """Meta-path finder that wraps the loaders of the ``TRIGGERS`` modules; it leaves once all have fired.

    It finds nothing itself: it asks the finders after it on ``sys.meta_path``, as the import system would, and only
    wraps the loader of the spec they return.
    """

    pending: ClassVar[dict[str, Callable[[], None]]] = dict(TRIGGERS)

    @classmethod
    def find_spec(
        cls, name: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if name not in cls.pending:
            return None
        for finder in sys.meta_path:
            find_spec = getattr(finder, "find_spec", None)
            if finder is cls or find_spec is None:
                continue
            spec = find_spec(name, path, target)
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _RunAfterLoading(spec.loader)  # type: ignore[assignment]
                return spec
        return None


def install() -> None:
    """Arm the hook (idempotent); does nothing when ``DRAEM_PLUGIN_AUTOLOAD=0`` or the triggers are already loaded."""
    if os.environ.get("DRAEM_PLUGIN_AUTOLOAD", "1") == "0" or _Finder in sys.meta_path:
        return
    if any(name in sys.modules for name in TRIGGERS):
        return
    sys.meta_path.insert(0, _Finder)  # type: ignore[arg-type]


install()
