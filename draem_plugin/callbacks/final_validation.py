"""Validate after the last training step when the schedule did not, so that every run ends with what it needs.

Validation gives anomalib's post-processor its normalisation and thresholds, and anomalib's ``ModelCheckpoint``
writes ``weights/lightning/model.ckpt`` after it. When ``max_epochs`` is not a multiple of
``check_val_every_n_epoch``, when ``val_check_interval`` does not fall on the last batch, or when ``max_steps`` ends
training mid-epoch, Lightning never validates the final weights: no checkpoint, no thresholds, nothing to export.
:class:`FinalValidation` runs Lightning's validation loop once more at the end of such a fit.

Example:
    >>> from anomalib.engine import Engine
    >>> Engine(max_epochs=1, check_val_every_n_epoch=12, callbacks=[FinalValidation()])  # doctest: +SKIP
"""

from __future__ import annotations

import logging

from lightning.pytorch import Callback, LightningModule, Trainer

__all__ = ["FinalValidation"]

logger = logging.getLogger(__name__)


class FinalValidation(Callback):
    """Run the validation loop after the last training step unless it has just run."""

    def __init__(self) -> None:
        self._validated_step = -1

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Nothing validated yet in this fit."""
        self._validated_step = -1

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Remember the training step whose weights were validated."""
        if not trainer.sanity_checking:
            self._validated_step = trainer.global_step

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Validate the final weights if the schedule left them unvalidated."""
        if trainer.interrupted or not trainer.enable_validation or self._validated_step == trainer.global_step:
            return
        logger.info(
            "Validating the final weights (step %d): the schedule's last validation was %s, and validation sets the "
            "post-processor's thresholds and writes the checkpoint.",
            trainer.global_step,
            f"at step {self._validated_step}" if self._validated_step >= 0 else "never",
        )
        trainer.validating = True
        trainer.fit_loop.epoch_loop.val_loop.run()
        trainer.training = True
