"""Data of the DRÆM plugin: the embedded SurfaceDemo set, image decoding, split checks and the device image cache.

Example:
    >>> from draem_plugin.data import SurfaceDemo, build_surface_demo
    >>> datamodule = SurfaceDemo(category="gravel", image_size=128)
"""

from __future__ import annotations

from .surface_demo import SurfaceDemo, build_surface_demo

__all__ = ["SurfaceDemo", "build_surface_demo"]
