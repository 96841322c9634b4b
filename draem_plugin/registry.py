"""Register DraemPlugin and SurfaceDemo with anomalib (which has no plugin registry of its own).

anomalib resolves a bare model name among direct ``AnomalibModule`` subclasses that are imported
(``get_model("DraemPlugin")``, the CLI's ``--model DraemPlugin``) and a ``class_path`` without dots as an attribute of
``anomalib.models``; datamodules likewise through ``anomalib.data``. Importing ``draem_plugin`` calls
:func:`register`, which adds the names there. The installed ``.pth`` hook does the import for every program that
imports ``anomalib.models``.

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


def register() -> None:
    """Expose ``DraemPlugin`` in ``anomalib.models`` and ``SurfaceDemo`` in ``anomalib.data``; fix ``anomalib
    benchmark`` (:mod:`draem_plugin.benchmark.anomalib_patch`). Idempotent."""
    from .data import SurfaceDemo  # noqa: PLC0415
    from .lightning_model import DraemPlugin  # noqa: PLC0415

    anomalib.models.DraemPlugin = DraemPlugin
    anomalib.data.SurfaceDemo = SurfaceDemo
    for module, name in ((anomalib.models, "DraemPlugin"), (anomalib.data, "SurfaceDemo")):
        if hasattr(module, "__all__") and name not in module.__all__:
            module.__all__.append(name)
    from .benchmark import anomalib_patch  # noqa: PLC0415

    anomalib_patch.apply()  # `anomalib benchmark`: rows with different keys, loud failures (see the module)
