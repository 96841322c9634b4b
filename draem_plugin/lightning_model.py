"""DraemPlugin: the Lightning module that trains and evaluates DRÆM inside anomalib.

Training draws synthetic anomalies on the batch's device with :class:`~draem_plugin.augmenter.PerlinAnomalyAugmenter`
inside ``training_step``; the networks are :class:`~draem_plugin.torch_model.DraemPluginModel`; the loss is
:class:`~draem_plugin.loss.DraemPluginLoss`. Defaults follow the original implementation (see the README's recipe
table): Adam at lr 1e-4, learning rate x0.2 at 80 % and 90 % of ``max_epochs``, 256x256 inputs in [0, 1].

Example:
    >>> from anomalib.engine import Engine
    >>> from draem_plugin import DraemPlugin, SurfaceDemo
    >>> model = DraemPlugin(reconstructive_width=16, discriminative_width=16, image_size=128)
    >>> engine = Engine(max_epochs=20)
    >>> engine.fit(model, datamodule=SurfaceDemo(image_size=128))  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from anomalib import LearningType
from anomalib.data import Batch
from anomalib.data.transforms.utils import extract_transforms_by_type
from anomalib.metrics import AUPR, AUPRO, AUROC, Evaluator, F1Score
from anomalib.models.components import AnomalibModule
from anomalib.post_processing import PostProcessor
from anomalib.pre_processing import PreProcessor
from anomalib.visualization import Visualizer
from lightning.pytorch.utilities.types import STEP_OUTPUT
from torchvision.transforms.v2 import Compose, Normalize, Resize

from .augmenter import PerlinAnomalyAugmenter
from .loss import DraemPluginLoss
from .torch_model import SIZE_MULTIPLE, DraemPluginModel

__all__ = ["DraemPlugin"]

logger = logging.getLogger(__name__)

_RNG_KEY = "draem_plugin_augmenter_rng_state"


def _as_size(image_size: int | Sequence[int]) -> tuple[int, int]:
    size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    if len(size) != 2 or any(isinstance(s, bool) or not isinstance(s, int) for s in size):
        msg = f"image_size must be an int or a (height, width) pair of ints, got {image_size!r}."
        raise ValueError(msg)
    if any(s < SIZE_MULTIPLE or s % SIZE_MULTIPLE for s in size):
        msg = (
            f"image_size must be at least {SIZE_MULTIPLE} and a multiple of {SIZE_MULTIPLE} in both dimensions "
            f"(the discriminative U-Net pools five times), got {image_size!r}; the original uses 256."
        )
        raise ValueError(msg)
    return size  # type: ignore[return-value]


class DraemPlugin(AnomalibModule):
    """DRÆM (Zavrtanik et al., ICCV 2021) as an anomalib model, faithful to the original implementation.

    Args:
        anomaly_source_path: folder of anomaly-source texture images (the DTD ``images`` folder in the paper; any
            folder of images or a single image works). ``None`` uses procedural Perlin textures and logs a warning.
        reconstructive_width: base width of the reconstructive auto-encoder (original: 128).
        discriminative_width: base width of the discriminative U-Net (original: 64).
        score_filter_size: odd side of the mean filter before the image-score max (original: 21).
        image_size: input size after the default pre-processor (multiples of 32; original: 256).
        augmentation_preset: ``"original"`` (the original code) or ``"paper"`` (the paper's text); the three
            arguments below override single values of the preset when given.
        anomaly_probability: share of training samples that get a synthetic anomaly (original: 0.5).
        beta_range: range of the image weight inside the anomaly (original: ``(0, 0.8)``, texture opacity 0.2-1).
        normal_rotation_probability: probability of rotating a clean image first (original: 0.3).
        max_source_images: keep at most this many source images in memory (a seeded random subset).
        lr: Adam learning rate (original: 1e-4).
        lr_milestones: fractions of ``max_epochs`` at which the learning rate is multiplied by ``lr_gamma``
            (original: 0.8 and 0.9; the paper's text: 400 and 600 of 700 epochs, i.e. ``(0.571, 0.857)``).
        lr_gamma: learning-rate factor at each milestone (original: 0.2; the paper's text: 0.1).
        channels_last: run the networks in channels-last memory format (faster on GPUs and oneDNN CPUs).
        seed: seed of the augmenter's random stream (each DDP rank adds its rank). ``None`` draws it from torch's
            global generator, so ``seed_everything`` makes runs reproducible.

    Example:
        >>> model = DraemPlugin(reconstructive_width=8, discriminative_width=8, image_size=64)
        >>> model.eval().model(torch.rand(1, 3, 64, 64)).anomaly_map.shape
        torch.Size([1, 64, 64])
    """

    def __init__(
        self,
        anomaly_source_path: str | Path | None = None,
        reconstructive_width: int = 128,
        discriminative_width: int = 64,
        score_filter_size: int = 21,
        image_size: int | tuple[int, int] = 256,
        augmentation_preset: Literal["original", "paper"] = "original",
        anomaly_probability: float | None = None,
        beta_range: tuple[float, float] | None = None,
        normal_rotation_probability: float | None = None,
        max_source_images: int | None = None,
        lr: float = 1e-4,
        lr_milestones: Sequence[float] = (0.8, 0.9),
        lr_gamma: float = 0.2,
        channels_last: bool = False,
        seed: int | None = None,
        pre_processor: PreProcessor | bool = True,
        post_processor: PostProcessor | bool = True,
        evaluator: Evaluator | bool = True,
        visualizer: Visualizer | bool = True,
    ) -> None:
        size = _as_size(image_size)
        if pre_processor is True:
            pre_processor = self.configure_pre_processor(size)
        super().__init__(
            pre_processor=pre_processor,
            post_processor=post_processor,
            evaluator=evaluator,
            visualizer=visualizer,
        )
        _check_optimiser(lr, lr_milestones, lr_gamma)
        if score_filter_size > min(size):
            msg = (
                f"score_filter_size ({score_filter_size}) is larger than the image ({size[0]}x{size[1]}); "
                "use an odd size below the image side (original: 21 at 256x256)."
            )
            raise ValueError(msg)
        overrides = {
            "anomaly_probability": anomaly_probability,
            "beta_range": beta_range,
            "normal_rotation_probability": normal_rotation_probability,
        }
        self.augmenter = PerlinAnomalyAugmenter.from_preset(
            augmentation_preset,
            anomaly_source_path=anomaly_source_path,
            source_size=size,
            max_source_images=max_source_images,
            seed=seed,
            **{name: value for name, value in overrides.items() if value is not None},
        )
        self.model = DraemPluginModel(
            reconstructive_width=reconstructive_width,
            discriminative_width=discriminative_width,
            score_filter_size=score_filter_size,
            channels_last=channels_last,
        )
        self.loss = DraemPluginLoss()

    @classmethod
    def configure_pre_processor(cls, image_size: tuple[int, int] | None = None) -> PreProcessor:
        """Resize to ``image_size`` (default 256x256); no ImageNet normalisation, as in the original."""
        return PreProcessor(transform=Compose([Resize(image_size or (256, 256), antialias=True)]))

    @staticmethod
    def configure_evaluator() -> Evaluator:
        """Image AUROC and F1, pixel AUROC, AP (area under the PR curve) and AUPRO on the test set.

        Pixel metrics are non-strict: a test set without masks reports image metrics only.
        """
        return Evaluator(
            test_metrics=[
                AUROC(fields=["pred_score", "gt_label"], prefix="image_"),
                F1Score(fields=["pred_label", "gt_label"], prefix="image_"),
                AUROC(fields=["anomaly_map", "gt_mask"], prefix="pixel_", strict=False),
                AUPR(fields=["anomaly_map", "gt_mask"], prefix="pixel_", strict=False),
                AUPRO(fields=["anomaly_map", "gt_mask"], prefix="pixel_", strict=False),
            ],
        )

    @property
    def learning_type(self) -> LearningType:
        """DRÆM trains on normal images only."""
        return LearningType.ONE_CLASS

    @property
    def trainer_arguments(self) -> dict[str, Any]:
        """No trainer argument is forced: what the user sets (epochs, precision, clipping, ...) stays as set."""
        return {}

    def configure_optimizers(self) -> Any:  # noqa: ANN401
        """Adam over both sub-networks with MultiStepLR at ``lr_milestones`` x ``max_epochs``."""
        optimizer = torch.optim.Adam(self.model.parameters(), lr=self.hparams.lr)
        max_epochs = self.trainer.max_epochs if self._trainer is not None else None
        if max_epochs is not None and max_epochs > 0:
            total, interval = max_epochs, "epoch"
        elif self._trainer is not None and self.trainer.max_steps > 0:
            total, interval = self.trainer.max_steps, "step"
        else:
            logger.warning("Neither max_epochs nor max_steps is set: the learning rate stays at %s.", self.hparams.lr)
            return optimizer
        milestones = sorted({max(1, round(fraction * total)) for fraction in self.hparams.lr_milestones})
        scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones, gamma=self.hparams.lr_gamma)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": interval}}

    def setup(self, stage: str) -> None:
        """Give each DDP rank its own augmenter stream (a restored checkpoint state is applied later)."""
        if stage == "fit":
            base = self.hparams.seed
            if base is None:
                base = int(torch.randint(2**31 - 1, (1,)).item())
            self.augmenter.reseed(base + self.global_rank)

    def on_train_start(self) -> None:
        """Refuse a pre-processor that normalises: DRÆM blends textures on images in [0, 1]."""
        if self.pre_processor and extract_transforms_by_type(self.pre_processor.transform, Normalize):
            msg = "DraemPlugin expects images in [0, 1]: remove Normalize from the pre-processor's transform."
            raise ValueError(msg)

    def training_step(self, batch: Batch, *args: Any, **kwargs: Any) -> STEP_OUTPUT:  # noqa: ANN401
        """Synthesise anomalies on the device, reconstruct, segment, and return the loss."""
        del args, kwargs
        augmented = self.augmenter(batch.image)
        reconstruction, logits = self.model(augmented.image)
        terms = self.loss.terms(augmented.clean, reconstruction, augmented.mask, logits)
        loss = terms["l2"] + terms["ssim"] + terms["focal"]
        batch_size = batch.image.shape[0]
        self.log("train_loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=batch_size)
        self.log_dict({f"train_{k}": v for k, v in terms.items()}, on_epoch=True, batch_size=batch_size)
        return {"loss": loss}

    def validation_step(self, batch: Batch, *args: Any, **kwargs: Any) -> STEP_OUTPUT:  # noqa: ANN401
        """Predict anomaly maps and scores for a validation batch."""
        del args, kwargs
        return batch.update(**self.model(batch.image)._asdict())

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Also save the augmenter's random state, so a resumed run does not replay the first epochs."""
        super().on_save_checkpoint(checkpoint)
        checkpoint[_RNG_KEY] = self.augmenter.get_rng_state()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Restore the augmenter's random state (each DDP rank derives its own stream from it)."""
        super().on_load_checkpoint(checkpoint)
        state = checkpoint.get(_RNG_KEY)
        if state is None:
            return
        self.augmenter.set_rng_state(state)
        rank = self.global_rank if self._trainer is not None else 0
        if rank:
            digest = hashlib.sha256(state.numpy().tobytes() + rank.to_bytes(4, "little")).digest()
            self.augmenter.reseed(int.from_bytes(digest[:7], "little"))


def _check_optimiser(lr: float, milestones: Sequence[float], gamma: float) -> None:
    if not lr > 0:
        msg = f"lr must be positive (original: 1e-4), got {lr!r}."
        raise ValueError(msg)
    if not all(0 < m < 1 for m in milestones):
        msg = f"lr_milestones are fractions of max_epochs in (0, 1) (original: (0.8, 0.9)), got {tuple(milestones)!r}."
        raise ValueError(msg)
    if not 0 < gamma <= 1:
        msg = f"lr_gamma must be in (0, 1] (original: 0.2), got {gamma!r}."
        raise ValueError(msg)
