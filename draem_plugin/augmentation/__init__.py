"""DRÆM's anomaly synthesis: Perlin masks, an on-device texture bank, the original texture ops and the augmenter.

The data path through this package: :mod:`.perlin` draws the masks, :mod:`.textures` holds the anomaly-source
textures, :mod:`.texture_ops` (with :mod:`.functional`) augments them, and :mod:`.augmenter` blends them into the
images inside the masks. :mod:`.sampling` draws the random numbers on the host and places them on the batch's device.

Example:
    >>> import torch
    >>> from draem_plugin.augmentation import PerlinAnomalyAugmenter
    >>> PerlinAnomalyAugmenter(seed=0)(torch.rand(2, 3, 32, 32)).mask.shape
    torch.Size([2, 1, 32, 32])
"""

from __future__ import annotations

from .augmenter import PRESETS, AugmentedBatch, PerlinAnomalyAugmenter
from .perlin import perlin_mask, rand_perlin_2d
from .texture_ops import PAPER_OPS, RANDOM_TEXTURE_OPS, TEXTURE_OPS, TextureOp, apply_random_texture_ops
from .textures import TextureBank, procedural_textures

__all__ = [
    "PAPER_OPS",
    "PRESETS",
    "RANDOM_TEXTURE_OPS",
    "TEXTURE_OPS",
    "AugmentedBatch",
    "PerlinAnomalyAugmenter",
    "TextureBank",
    "TextureOp",
    "apply_random_texture_ops",
    "perlin_mask",
    "procedural_textures",
    "rand_perlin_2d",
]
