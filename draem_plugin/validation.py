"""Checks of user arguments and the wording of the errors they raise, shared by every module of the plugin.

Example:
    >>> as_size(64, "image_size", multiple=32)
    (64, 64)
    >>> listing(["a.png", "b.png", "c.png"], limit=2)
    'a.png, b.png, ... (1 more)'
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

__all__ = [
    "as_size",
    "check_filter_size",
    "check_interval",
    "check_probability",
    "check_schedule",
    "check_seed",
    "listing",
]

#: Items an error message lists before it only counts the rest.
LISTED = 10

#: Largest seed accepted, the same bound as ``lightning.seed_everything``'s.
MAX_SEED = 2**32 - 1


def as_size(value: int | Sequence[int], name: str, multiple: int = 1) -> tuple[int, int]:
    """``value`` (one int or a ``(height, width)`` pair) as a pair of positive ints that are multiples of ``multiple``.

    Raises:
        ValueError: naming ``name``, when ``value`` is no such size.

    Example:
        >>> as_size([256, 128], "image_size", multiple=32)
        (256, 128)
    """
    pair = (value, value) if isinstance(value, int) else tuple(value)
    malformed = len(pair) != 2 or any(isinstance(side, bool) or not isinstance(side, int) for side in pair)
    if malformed or (multiple == 1 and min(pair) < 1):
        msg = f"{name} must be a positive int or a (height, width) pair of them, got {value!r}."
        raise ValueError(msg)
    if multiple > 1 and any(side < multiple or side % multiple for side in pair):
        msg = (
            f"{name} must be at least {multiple} and a multiple of {multiple} in both dimensions (the discriminative "
            f"U-Net pools five times), got {value!r}; the original uses 256."
        )
        raise ValueError(msg)
    return pair  # type: ignore[return-value]


def check_probability(value: float, name: str) -> float:
    """``value`` as a float if it is a probability in ``[0, 1]``; otherwise a ``ValueError`` naming ``name``.

    Example:
        >>> check_probability(0.3, "normal_rotation_probability")
        0.3
    """
    if not 0.0 <= value <= 1.0:  # `not <=` also refuses NaN
        msg = f"{name} must be a probability in [0, 1], got {value!r}."
        raise ValueError(msg)
    return float(value)


def check_interval(
    value: Sequence[float], name: str, low: float = -math.inf, high: float = math.inf
) -> tuple[float, float]:
    """``value`` as a ``(lo, hi)`` float pair with ``low <= lo <= hi <= high``; otherwise a ``ValueError``.

    Example:
        >>> check_interval([0, 0.8], "beta_range", 0.0, 1.0)
        (0.0, 0.8)
    """
    if len(value) != 2 or not low <= value[0] <= value[1] <= high:
        bounds = f" within [{low}, {high}]" if math.isfinite(low) or math.isfinite(high) else ""
        msg = f"{name} must be (lo, hi) with lo <= hi{bounds}, got {tuple(value)!r}."
        raise ValueError(msg)
    return float(value[0]), float(value[1])


def check_seed(seed: int | None) -> int | None:
    """``seed`` if it is ``None`` or an int in ``[0, MAX_SEED]``; otherwise a ``ValueError`` naming the range.

    Example:
        >>> check_seed(42)
        42
    """
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED):
        msg = f"seed must be None or an int in [0, {MAX_SEED}] (as lightning.seed_everything), got {seed!r}."
        raise ValueError(msg)
    return seed


def check_schedule(lr: float, milestones: Sequence[float], gamma: float) -> None:
    """Refuse a learning rate, milestones or factor the schedule cannot use, naming the parameter."""
    if not (lr > 0 and math.isfinite(lr)):
        msg = f"lr must be positive and finite (original: 1e-4), got {lr!r}."
        raise ValueError(msg)
    if not all(0 < m < 1 for m in milestones):
        msg = f"lr_milestones are fractions of max_epochs in (0, 1) (original: (0.8, 0.9)), got {tuple(milestones)!r}."
        raise ValueError(msg)
    if not 0 < gamma <= 1:
        msg = f"lr_gamma must be in (0, 1] (original: 0.2), got {gamma!r}."
        raise ValueError(msg)


def check_filter_size(filter_size: int, image_size: tuple[int, int]) -> None:
    """Refuse an image-score filter larger than the image."""
    if filter_size > min(image_size):
        msg = (
            f"score_filter_size ({filter_size}) is larger than the image ({image_size[0]}x{image_size[1]}); use an "
            "odd size below the image side (original: 21 at 256x256)."
        )
        raise ValueError(msg)


def listing(items: Iterable[object], limit: int = LISTED) -> str:
    """Up to ``limit`` of ``items``, comma-separated, then how many more there are.

    Example:
        >>> listing(range(3))
        '0, 1, 2'
    """
    items = [str(item) for item in items]
    shown = ", ".join(items[:limit])
    return shown + (f", ... ({len(items) - limit} more)" if len(items) > limit else "")
