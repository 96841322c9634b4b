"""An exponential moving average of DRÆM's networks, tested, checkpointed and kept in place of the last weights.

:class:`NetworkAverage` is Lightning's :class:`~lightning.pytorch.callbacks.WeightAveraging` restricted to the
networks (``pl_module.model``, parameters and BatchNorm statistics): the post-processor's thresholds, which validation
computes from the averaged networks, stay with the module and are never averaged. The average is bias-corrected as
Adam's moments are (:func:`ema_weight`), so the random initial weights carry no weight in it. Training itself is
unchanged: the callback draws no random numbers and only reads the weights after each optimiser step. Validation
(and :class:`~draem_plugin.benchmark.curves.PeriodicTest`, through :meth:`NetworkAverage.swapped_in`) sees the
average; ``weights/lightning/model.ckpt`` stores it as the networks' weights, so ``anomalib test`` and
``anomalib export`` use it; at the end of training it replaces the last weights. Not part of the original recipe.

Example:
    >>> from anomalib.engine import Engine
    >>> Engine(callbacks=[NetworkAverage(decay=0.99)])  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import Any

import torch
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import WeightAveraging
from torch.optim.swa_utils import AveragedModel

__all__ = ["NetworkAverage", "check_decay", "ema_weight"]

logger = logging.getLogger(__name__)

_NETWORKS = "model."
_AVERAGED = "module."


def check_decay(decay: float | None) -> None:
    """Raise a ValueError unless ``decay`` is None or in (0, 1)."""
    if decay is not None and not 0.0 < decay < 1.0:
        msg = f"ema_decay must be in (0, 1) (0.99 averages about the last 100 steps) or None, got {decay}."
        raise ValueError(msg)


def ema_weight(decay: float, updates: int) -> float:
    """Weight of the newest weights in a bias-corrected exponential moving average after ``updates`` updates.

    ``(1 - decay) / (1 - decay ** updates)``: 1 at the first update (the average is the weights), ``1 - decay`` in
    the long run. It equals an average that starts at zero and is divided by ``1 - decay ** updates``, as Adam does.

    Args:
        decay: the long-run decay, in (0, 1).
        updates: how many updates the average holds, this one included (at least 1).

    Returns:
        The interpolation weight in (0, 1].

    Example:
        >>> ema_weight(0.9, 1), round(ema_weight(0.9, 2), 4)
        (1.0, 0.5263)
    """
    return (1.0 - decay) / (1.0 - decay**updates)


def _average_function(decay: float) -> Callable[[list[torch.Tensor], list[torch.Tensor], torch.Tensor], None]:
    """The ``multi_avg_fn`` of :class:`~torch.optim.swa_utils.AveragedModel`: one bias-corrected EMA step."""

    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], count: torch.Tensor) -> None:
        if torch.is_floating_point(averaged[0]):
            torch._foreach_lerp_(averaged, current, ema_weight(decay, int(count) + 1))
        else:  # integer buffers (BatchNorm's num_batches_tracked) follow the networks
            torch._foreach_copy_(averaged, current)

    return update


class NetworkAverage(WeightAveraging):
    """Keep a bias-corrected exponential moving average of ``pl_module.model``, updated after every optimiser step.

    Args:
        decay: the long-run decay per step, in (0, 1): the average spans about ``1 / (1 - decay)`` steps.

    Raises:
        ValueError: if ``decay`` is not in (0, 1).
    """

    def __init__(self, decay: float) -> None:
        check_decay(decay)
        super().__init__(use_buffers=True, multi_avg_fn=_average_function(decay))

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        """Create the average of the networks when fit begins."""
        if stage == "fit":
            self._average_model = AveragedModel(pl_module.model, use_buffers=True, **self._kwargs)

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Put the average on the networks' device (fit's ``setup`` runs before the module is moved)."""
        if self._average_model is not None:
            self._average_model.to(pl_module.device)

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        """Fold the networks' weights after this optimiser step into the average."""
        super().on_train_batch_end(trainer, pl_module.model, outputs, batch, batch_idx)

    @contextlib.contextmanager
    def swapped_in(self, pl_module: LightningModule) -> Iterator[None]:
        """Hold the averaged networks in ``pl_module`` for the block (nothing changes outside fit)."""
        if self._average_model is None:
            yield
            return
        self._swap_models(pl_module)
        try:
            yield
        finally:
            self._swap_models(pl_module)

    def on_save_checkpoint(self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]) -> None:
        """Save the averaged networks as the module's; the training weights go to ``current_model_state``."""
        if self._average_model is None:
            return
        average = self._average_model.state_dict()
        networks = {name: value for name, value in average.items() if name.startswith(_AVERAGED)}
        checkpoint["current_model_state"] = dict(checkpoint["state_dict"])
        checkpoint["state_dict"] = checkpoint["state_dict"] | {
            _NETWORKS + name.removeprefix(_AVERAGED): value for name, value in networks.items()
        }
        checkpoint["averaging_state"] = {name: value for name, value in average.items() if name not in networks}

    def on_load_checkpoint(self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]) -> None:
        """Resume both the average and the training weights; outside fit the averaged ``state_dict`` is all there is."""
        if self._average_model is None:
            return
        if "current_model_state" in checkpoint and "averaging_state" in checkpoint:
            average = {
                _AVERAGED + name.removeprefix(_NETWORKS): value
                for name, value in checkpoint["state_dict"].items()
                if name.startswith(_NETWORKS)
            }
            self._average_model.load_state_dict(average | checkpoint["averaging_state"])
            pl_module.load_state_dict(checkpoint["current_model_state"])
            return
        logger.warning(
            "The checkpoint holds no network average (it was trained without ema_decay): the average starts again "
            "from its weights."
        )
        self._average_model.module.load_state_dict(pl_module.model.state_dict())

    def _swap_models(self, pl_module: LightningModule) -> None:
        super()._swap_models(pl_module.model)

    def _copy_average_to_current(self, pl_module: LightningModule) -> None:
        super()._copy_average_to_current(pl_module.model)
