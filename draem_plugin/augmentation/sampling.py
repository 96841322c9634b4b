"""Random draws from one generator, placed on the batch's device.

The augmenter keeps its generator on the CPU whatever the batch's device: it draws only a few numbers per sample,
and drawing them on the host means a CUDA step never waits for the device. These helpers draw on the generator's
device and queue the copy to the batch's device without blocking.

Example:
    >>> import torch
    >>> uniform_on(3, 0.5, 2.0, torch.Generator().manual_seed(0), torch.device("cpu")).shape
    torch.Size([3])
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["draw_device", "rand_on", "randint_on", "uniform_on"]


def draw_device(generator: torch.Generator | None, device: torch.device) -> torch.device:
    """Where random numbers are drawn: on the generator's device (e.g. a CPU generator for a CUDA batch)."""
    return generator.device if generator is not None else device


def _moved(values: Tensor, device: torch.device) -> Tensor:
    """``values`` on ``device``; a host-to-device copy is queued without waiting for the device."""
    return values.to(device, non_blocking=True)


def rand_on(shape: int | tuple[int, ...], generator: torch.Generator | None, device: torch.device) -> Tensor:
    """``torch.rand(shape)`` drawn from ``generator`` (on its own device) and placed on ``device``.

    Example:
        >>> rand_on((2, 3), torch.Generator().manual_seed(0), torch.device("cpu")).shape
        torch.Size([2, 3])
    """
    return _moved(torch.rand(shape, generator=generator, device=draw_device(generator, device)), device)


def randint_on(
    low: int, high: int, shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device
) -> Tensor:
    """``torch.randint(low, high, shape)`` (``high`` exclusive) drawn from ``generator``, placed on ``device``."""
    draws = torch.randint(low, high, shape, generator=generator, device=draw_device(generator, device))
    return _moved(draws, device)


def uniform_on(
    shape: int | tuple[int, ...], low: float, high: float, generator: torch.Generator | None, device: torch.device
) -> Tensor:
    """Uniform draws in ``[low, high)`` from ``generator``, placed on ``device``."""
    draws = torch.empty(shape, device=draw_device(generator, device)).uniform_(low, high, generator=generator)
    return _moved(draws, device)
