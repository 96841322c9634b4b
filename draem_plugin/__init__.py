"""draem-plugin: DRÆM (Zavrtanik, Kristan, Skočaj, ICCV 2021) as a first-class anomalib model.

Importing the package defines the names below and adds ``DraemPlugin`` and ``SurfaceDemo`` to ``anomalib.models`` and
``anomalib.data`` (:func:`register`); it changes nothing else in anomalib.

Example:
    >>> from draem_plugin import DraemPlugin, DraemPluginModel, PerlinAnomalyAugmenter, SurfaceDemo
    >>> from anomalib.models import get_model
    >>> type(get_model("DraemPlugin", reconstructive_width=8, discriminative_width=8)).__name__
    'DraemPlugin'
"""

from .augmentation import AugmentedBatch, PerlinAnomalyAugmenter, TextureBank
from .data import SurfaceDemo, build_surface_demo
from .lightning_model import DraemPlugin
from .loss import DraemPluginLoss
from .registry import register
from .torch_model import DraemPluginModel

__all__ = [
    "AugmentedBatch",
    "DraemPlugin",
    "DraemPluginLoss",
    "DraemPluginModel",
    "PerlinAnomalyAugmenter",
    "SurfaceDemo",
    "TextureBank",
    "build_surface_demo",
    "register",
]

__version__ = "0.1.0"

register()
