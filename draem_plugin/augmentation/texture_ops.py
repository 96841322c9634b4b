"""The random texture ops of the original DRÆM as data: each op, and the ranges its per-sample parameters come from.

The original augments each anomaly-source texture with 3 of 10 imgaug augmenters, drawn without replacement and
applied in random order. Here each of them is a :class:`TextureOp`: a batched function (from kornia or
:mod:`.functional`) and a table of parameter ranges, in the manner of kornia's augmentation modules and their
parameter generators; :func:`apply_random_texture_ops` applies them to a batch without a loop over samples.

Example:
    >>> import torch
    >>> x = torch.rand(4, 3, 16, 16)
    >>> apply_random_texture_ops(x, 1, ["invert"]).add(x).allclose(torch.ones_like(x))
    True
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import torch
from kornia.enhance import equalize, invert, posterize, sharpness, solarize
from kornia.geometry.transform import rotate
from torch import Tensor

from .functional import BRIGHTNESS_SPACES, adjust_brightness, autocontrast, gamma_contrast, shift_hue_saturation
from .sampling import draw_device, rand_on, randint_on, uniform_on

__all__ = [
    "PAPER_OPS",
    "RANDOM_TEXTURE_OPS",
    "TEXTURE_OPS",
    "Coin",
    "Integers",
    "TextureOp",
    "Uniform",
    "apply_random_texture_ops",
]


@dataclass(frozen=True)
class Uniform:
    """Floats drawn uniformly from ``[low, high)``, one per sample (or one per sample and channel)."""

    low: float
    high: float
    per_channel: bool = False

    def draw(self, batch: int, channels: int, generator: torch.Generator | None, device: torch.device) -> Tensor:
        """``(B,)`` or ``(B, C)`` draws on ``device``."""
        shape = (batch, channels) if self.per_channel else (batch,)
        return uniform_on(shape, self.low, self.high, generator, device)


@dataclass(frozen=True)
class Integers:
    """Integers drawn uniformly from ``low`` to ``high - 1``, one per sample."""

    low: int
    high: int

    def draw(self, batch: int, channels: int, generator: torch.Generator | None, device: torch.device) -> Tensor:
        """``(B,)`` draws on ``device``."""
        del channels
        return randint_on(self.low, self.high, (batch,), generator, device)


@dataclass(frozen=True)
class Coin:
    """``True`` with probability ``p``, one per sample."""

    p: float = 0.5

    def draw(self, batch: int, channels: int, generator: torch.Generator | None, device: torch.device) -> Tensor:
        """``(B,)`` booleans on ``device``."""
        del channels
        return rand_on(batch, generator, device) < self.p


@dataclass(frozen=True)
class TextureOp:
    """A batched texture op and the parameter ranges it is called with.

    Calling it draws every parameter (in the order of ``params``), applies ``function(x, **params)`` to the samples
    selected with probability ``p`` (kornia's per-sample apply probability), and leaves the others unchanged.

    Example:
        >>> op = TextureOp(gamma_contrast, {"gamma": Uniform(2.0, 2.0)})
        >>> op(torch.full((1, 3, 1, 1), 0.5), None)[0, 0, 0, 0]
        tensor(0.2500)
    """

    function: Callable[..., Tensor]
    params: Mapping[str, Uniform | Integers | Coin] = field(default_factory=dict)
    p: float = 1.0

    def __call__(self, x: Tensor, generator: torch.Generator | None) -> Tensor:
        """Apply the op to ``x`` (``(B, 3, H, W)`` in ``[0, 1]``) with parameters drawn from ``generator``."""
        batch, channels = x.shape[:2]
        drawn = {name: spec.draw(batch, channels, generator, x.device) for name, spec in self.params.items()}
        out = self.function(x, **drawn)
        if self.p >= 1.0:
            return out
        applied = rand_on(batch, generator, x.device) < self.p
        return torch.where(applied.view(-1, 1, 1, 1), out, x)


#: The original's ten imgaug augmenters (``train_DRAEM.py`` / ``data_loader.py``); ranges on 0..255 are divided by 255.
RANDOM_TEXTURE_OPS: dict[str, Callable[[Tensor, torch.Generator | None], Tensor]] = {
    # GammaContrast((0.5, 2.0), per_channel=True)
    "gamma": TextureOp(gamma_contrast, {"gamma": Uniform(0.5, 2.0, per_channel=True)}),
    # MultiplyAndAddToBrightness(mul=(0.8, 1.2), add=(-30, 30)): a random colour space, multiply and add in random order
    "brightness": TextureOp(
        adjust_brightness,
        {
            "space": Integers(0, len(BRIGHTNESS_SPACES)),
            "multiplier": Uniform(0.8, 1.2),
            "offset": Uniform(-30 / 255, 30 / 255),
            "add_first": Coin(0.5),
        },
    ),
    # pillike.EnhanceSharpness(): factor in (0, 2); 1 keeps the image
    "sharpness": TextureOp(sharpness, {"factor": Uniform(0.0, 2.0)}),
    # AddToHueAndSaturation((-50, 50), per_channel=True): hue -50..50 of 255 is a full turn of 360 degrees
    "hue_saturation": TextureOp(
        shift_hue_saturation,
        {"hue": Uniform(-50 / 255 * 360, 50 / 255 * 360), "saturation": Uniform(-50 / 255, 50 / 255)},
    ),
    # Solarize(0.5, threshold=(32, 128)): half the samples invert the values above the threshold
    "solarize": TextureOp(solarize, {"thresholds": Uniform(32 / 255, 128 / 255)}, p=0.5),
    # Posterize(): keep 1..8 bits
    "posterize": TextureOp(posterize, {"bits": Integers(1, 9)}),
    # Invert()
    "invert": TextureOp(invert),
    # pillike.Autocontrast(): cutoff 0..20 percent per image
    "autocontrast": TextureOp(autocontrast, {"cutoff": Integers(0, 21)}),
    # pillike.Equalize()
    "equalize": TextureOp(equalize),
    # Affine(rotate=(-45, 45)), zero fill
    "rotate": TextureOp(rotate, {"angle": Uniform(-45.0, 45.0)}),
}
#: All 10 op names (the original code).
TEXTURE_OPS: tuple[str, ...] = tuple(RANDOM_TEXTURE_OPS)
#: The 7 ops named in the paper's text.
PAPER_OPS: tuple[str, ...] = (
    "posterize",
    "sharpness",
    "solarize",
    "equalize",
    "brightness",
    "hue_saturation",
    "autocontrast",
)


def apply_random_texture_ops(
    textures: Tensor,
    num_ops: int,
    ops: Sequence[str] = TEXTURE_OPS,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Apply ``num_ops`` ops, drawn per sample without replacement from ``ops``, in random order.

    Round ``r`` applies each op to exactly the samples whose ``r``-th draw it is (``index_select`` / ``index_copy_``),
    so no op runs on samples that did not draw it and there is no loop over samples.

    Args:
        textures: ``(B, 3, H, W)`` float in ``[0, 1]``.
        num_ops: Ops per sample, between 1 and ``len(ops)``.
        ops: Names from :data:`TEXTURE_OPS`.
        generator: Source of randomness, on the textures' device or on the CPU (no device sync then).

    Returns:
        The augmented textures, same shape, in ``[0, 1]``.
    """
    functions = [RANDOM_TEXTURE_OPS[name] for name in ops]
    device = draw_device(generator, textures.device)
    draws = torch.rand(textures.shape[0], len(functions), generator=generator, device=device)
    order = draws.argsort(dim=1)[:, :num_ops].cpu()  # with a CUDA generator: one host sync, not one per (round, op)
    out = textures.clone()
    for round_ in range(num_ops):
        for k, function in enumerate(functions):
            index = (order[:, round_] == k).nonzero().squeeze(1)
            if index.numel():
                index = index.to(textures.device, non_blocking=True)
                out.index_copy_(0, index, function(out.index_select(0, index), generator))
    return out
