"""Register DraemPlugin and SurfaceDemo with anomalib, which has no plugin registry of its own.

anomalib resolves a bare model name among direct ``AnomalibModule`` subclasses that are imported
(``get_model("DraemPlugin")``, the CLI's ``--model DraemPlugin``) and a ``class_path`` without dots as an attribute of
``anomalib.models``; datamodules likewise through ``anomalib.data``. Importing ``draem_plugin`` calls
:func:`register`, which adds the two names there and changes nothing else. The installed ``.pth`` hook does the
import for every program that imports ``anomalib.models``.

Example:
    >>> import anomalib.models
    >>> from draem_plugin import register
    >>> register()
    >>> anomalib.models.DraemPlugin.__name__
    'DraemPlugin'
"""

from __future__ import annotations

import anomalib.data
import anomalib.models

__all__ = ["register"]


def register() -> None:
    """Expose ``DraemPlugin`` in ``anomalib.models`` and ``SurfaceDemo`` in ``anomalib.data`` (idempotent)."""
    from .data import SurfaceDemo
    from .lightning_model import DraemPlugin

    for module, name, value in (
        (anomalib.models, "DraemPlugin", DraemPlugin),
        (anomalib.data, "SurfaceDemo", SurfaceDemo),
    ):
        setattr(module, name, value)
        if hasattr(module, "__all__") and name not in module.__all__:
            module.__all__.append(name)
