"""SurfaceDemo, the embedded default data: rendering (:mod:`.render`), on-disk build (:mod:`.build`), datamodule.

Example:
    >>> from draem_plugin.data.surface_demo import SurfaceDemo, build_surface_demo
"""

from __future__ import annotations

from .build import build_surface_demo
from .datamodule import SurfaceDemo
from .render import CATEGORIES, DEFECT_TYPES, photo_columns

__all__ = ["CATEGORIES", "DEFECT_TYPES", "SurfaceDemo", "build_surface_demo", "photo_columns"]
