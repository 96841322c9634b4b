"""DraemPlugin: the Lightning module that wires DRÆM into anomalib; each piece it connects has its own module.

Defaults follow the original implementation (the README's recipe table): Adam at lr 1e-4, learning rate x0.2 at 80 %
and 90 % of ``max_epochs``, 256x256 inputs in [0, 1]. ``docs/architecture.md`` maps the modules.

Example:
    >>> from anomalib.engine import Engine
    >>> from draem_plugin import DraemPlugin, SurfaceDemo
    >>> model = DraemPlugin(reconstructive_width=16, discriminative_width=16, image_size=128)
    >>> engine = Engine(max_epochs=20)
    >>> engine.fit(model, datamodule=SurfaceDemo(image_size=128))  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from anomalib import LearningType
from anomalib.data import AnomalibDataModule, Batch
from anomalib.metrics import AUPR, AUPRO, AUROC, Evaluator, F1Score
from anomalib.models.components import AnomalibModule
from anomalib.post_processing import PostProcessor
from anomalib.pre_processing import PreProcessor
from anomalib.visualization import Visualizer
from lightning.pytorch import Callback
from lightning.pytorch.utilities.types import STEP_OUTPUT
from torchvision.transforms.v2 import Compose, Resize

from .augmentation import PerlinAnomalyAugmenter
from .callbacks import FinalValidation, FiniteLossGuard, NetworkAverage, RunLengthWarning
from .callbacks.network_average import check_decay
from .data.checks import SplitCheck
from .data.train_cache import TrainImageCache
from .loss import DraemPluginLoss
from .original_weights import original_model
from .protocol import OriginalProtocol
from .torch_model import SIZE_MULTIPLE, DraemPluginModel, Normalization, check_normalization
from .validation import as_size, check_filter_size, check_schedule

__all__ = ["DraemPlugin"]

logger = logging.getLogger(__name__)

_RNG_KEY = "draem_plugin_augmenter_rng_state"
#: Constructor arguments that shape the networks: a checkpoint's values win over the command's (see on_load_checkpoint).
_NETWORK_ARGUMENTS = (
    "reconstructive_width",
    "discriminative_width",
    "score_filter_size",
    "channels_last",
    "normalization",
)


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
        focal_normal_weight: weight of the focal loss on normal pixels, in ``[0, 1]`` (original: 1); anomalous pixels
            keep weight 1. 0 is anomalib's ``Draem`` under kornia 0.9, whose maps on KolektorSDD then put every good
            pixel above 0.5 (docs/benchmarks.md, "A smaller weight on normal pixels").
        ema_decay: keep an exponential moving average of the networks with this decay per step (0.99 spans about
            100 steps) and validate, checkpoint and end with it (:class:`~draem_plugin.callbacks.NetworkAverage`);
            ``None`` (the original) uses the last weights.
        channels_last: run the networks in channels-last memory format (faster on GPUs and oneDNN CPUs).
        normalization: ``"batch"`` (the original's BatchNorm) or ``"group"`` (GroupNorm: the same statistics in
            training and test, whatever the batch; a departure from the original, see docs/benchmarks.md).
        compile_networks: train through ``torch.compile`` of the networks (the first steps compile; evaluation,
            export and checkpoints use the plain modules, which share the weights).
        seed: seed of the weight initialisation, of the augmenter's random stream (each DDP rank adds its rank) and
            of the cached images' shuffling: the same seed gives the same run, whatever the command line seeds.
            ``None`` draws them from torch's global generator, so ``seed_everything`` before construction fixes them.
        cache_train_images: decode the training split once through the datamodule's loader and keep it on the
            device (:class:`~draem_plugin.data.train_cache.TrainImageCache`): epochs then never wait for disk, PNG
            decoding or worker start-up. Skipped, with a warning, when the datamodule's training augmentations are
            random or the images would take more than half the free memory.
        original_protocol: also report the metrics as the original ``test_DRAEM.py`` computes them (raw scores and
            maps, masks resized as the original resizes them; :mod:`~draem_plugin.protocol`).

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
        focal_normal_weight: float = 1.0,
        ema_decay: float | None = None,
        channels_last: bool = False,
        normalization: Normalization = "batch",
        compile_networks: bool = False,
        seed: int | None = None,
        cache_train_images: bool = True,
        original_protocol: bool = False,
        pre_processor: PreProcessor | bool = True,
        post_processor: PostProcessor | bool = True,
        evaluator: Evaluator | bool = True,
        visualizer: Visualizer | bool = True,
    ) -> None:
        size = as_size(image_size, "image_size", multiple=SIZE_MULTIPLE)
        if pre_processor is True:
            pre_processor = self.configure_pre_processor(size)
        super().__init__(
            pre_processor=pre_processor,
            post_processor=post_processor,
            evaluator=evaluator,
            visualizer=visualizer,
        )
        check_schedule(lr, lr_milestones, lr_gamma)
        check_normalization(normalization)
        check_decay(ema_decay)
        check_filter_size(score_filter_size, size)
        self.loss = DraemPluginLoss(focal_normal_weight=focal_normal_weight)
        self.augmenter = PerlinAnomalyAugmenter.from_preset(
            augmentation_preset,
            anomaly_source_path=anomaly_source_path,
            source_size=size,
            max_source_images=max_source_images,
            seed=seed,
            anomaly_probability=anomaly_probability,
            beta_range=beta_range,
            normal_rotation_probability=normal_rotation_probability,
        )
        self._build_networks()
        self.finite_loss_guard = FiniteLossGuard()
        self.train_image_cache = TrainImageCache(seed) if cache_train_images else None
        self._single_image_warned = False

    def _build_networks(self) -> None:
        """(Re)build the networks from the hyperparameters."""
        arguments = {name: self.hparams[name] for name in _NETWORK_ARGUMENTS}
        self.model = DraemPluginModel(**arguments, seed=self.hparams.get("seed"))
        # Kept out of the module tree: it shares the parameters of ``self.model`` and must not enter the state_dict.
        network = torch.compile(self.model) if self.hparams.get("compile_networks") else self.model
        object.__setattr__(self, "_train_network", network)

    @classmethod
    def configure_pre_processor(cls, image_size: tuple[int, int] | None = None) -> PreProcessor:
        """Resize to ``image_size`` (default 256x256); no ImageNet normalisation, as in the original.

        Bilinear without antialiasing, like the original's ``cv2.resize`` and like the exported model (anomalib
        exports ``Resize`` without antialiasing), so ``anomalib predict`` and the ONNX/OpenVINO export agree.
        """
        return PreProcessor(transform=Compose([Resize(image_size or (256, 256), antialias=False)]))

    @staticmethod
    def configure_evaluator() -> Evaluator:
        """Test: image AUROC and F1, pixel AUROC, AP (area under the PR curve), AUPRO; validation: the two AUROCs.

        Pixel metrics are non-strict: a set without masks reports image metrics only.
        """
        return Evaluator(
            val_metrics=[
                AUROC(fields=["pred_score", "gt_label"], prefix="image_"),
                AUROC(fields=["anomaly_map", "gt_mask"], prefix="pixel_", strict=False),
            ],
            test_metrics=[
                AUROC(fields=["pred_score", "gt_label"], prefix="image_"),
                F1Score(fields=["pred_label", "gt_label"], prefix="image_"),
                AUROC(fields=["anomaly_map", "gt_mask"], prefix="pixel_", strict=False),
                AUPR(fields=["anomaly_map", "gt_mask"], prefix="pixel_", strict=False),
                AUPRO(fields=["anomaly_map", "gt_mask"], prefix="pixel_", strict=False),
            ],
        )

    def configure_callbacks(self) -> list[Callback]:
        """The anomalib components, data checks, training guards, network average, image cache and original protocol."""
        callbacks = [*super().configure_callbacks(), SplitCheck(SIZE_MULTIPLE), self.finite_loss_guard]
        callbacks += [FinalValidation(), RunLengthWarning()]
        if self.hparams.get("ema_decay") is not None:
            callbacks.append(NetworkAverage(self.hparams.ema_decay))
        if self.train_image_cache is not None:
            callbacks.append(self.train_image_cache)
        if self.hparams.get("original_protocol"):  # before the post-processor, which normalises the scores in place
            callbacks.insert(callbacks.index(self.post_processor) if self.post_processor else 0, OriginalProtocol())
        return callbacks

    @classmethod
    def from_original(
        cls, reconstructive_path: str | Path, discriminative_path: str | Path, **init_args: Any
    ) -> DraemPlugin:
        """A DraemPlugin holding the authors' released networks (``<run>_.pckl`` and ``<run>__seg.pckl``).

        Both base widths are read from the files; ``init_args`` set the rest (e.g. ``image_size``). The networks are
        converted for RGB input (:mod:`~draem_plugin.original_weights`).
        """
        return original_model(reconstructive_path, discriminative_path, **init_args)

    @property
    def learning_type(self) -> LearningType:
        """DRÆM trains on normal images only."""
        return LearningType.ONE_CLASS

    @property
    def trainer_arguments(self) -> dict[str, Any]:
        """No trainer argument is forced: what the user sets (epochs, precision, clipping, ...) stays as set."""
        return {}

    def configure_optimizers(self) -> Any:
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
        """Give each DDP rank its own augmenter stream (a resumed run's checkpoint restores it afterwards)."""
        if stage == "fit":
            base = self.hparams.seed
            if base is None:
                base = int(torch.randint(2**31 - 1, (1,)).item())
            self.augmenter.reseed(base + self.global_rank)

    def training_step(self, batch: Batch, *args: Any, **kwargs: Any) -> STEP_OUTPUT:
        """Synthesise anomalies on the device, reconstruct, segment, and return the loss and its terms."""
        del args, kwargs
        image = batch.image
        if image.shape[0] == 1 and (image.shape[-2] // SIZE_MULTIPLE) * (image.shape[-1] // SIZE_MULTIPLE) == 1:
            image = self._pair_single_image(image)
        augmented = self.augmenter(image)
        reconstruction, logits = self._train_network(augmented.image)
        losses = self.loss(augmented.clean, reconstruction, augmented.mask, logits)
        self.finite_loss_guard.track(losses)
        batch_size = batch.image.shape[0]
        self.log("train_loss", losses["loss"], on_step=True, on_epoch=True, prog_bar=True, batch_size=batch_size)
        self.log_dict({f"train_{k}": v for k, v in losses.items() if k != "loss"}, on_epoch=True, batch_size=batch_size)
        return losses

    def validation_step(self, batch: Batch, *args: Any, **kwargs: Any) -> STEP_OUTPUT:
        """Predict anomaly maps and scores for a validation batch."""
        del args, kwargs
        return batch.update(**self.model(batch.image)._asdict())

    def _pair_single_image(self, image: torch.Tensor) -> torch.Tensor:
        """Two copies of a lone 32x32 image (each gets its own anomaly): BatchNorm cannot train on one value."""
        if not self._single_image_warned:
            self._single_image_warned = True
            logger.warning(
                "A training batch holds a single %dx%d image, which leaves one value per channel at the U-Net's "
                "bottleneck, where BatchNorm cannot normalise; such batches train on two differently augmented "
                "copies of the image. Use image_size >= 64, or a train_batch_size that leaves no last batch of one.",
                *image.shape[-2:],
            )
        return image.repeat(2, 1, 1, 1)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Also save the augmenter's random state, so that a resumed run does not replay its anomalies."""
        super().on_save_checkpoint(checkpoint)
        checkpoint[_RNG_KEY] = self.augmenter.get_rng_state()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Adopt the checkpoint's network sizes; restore the augmenter's random state (one stream per rank).

        ``anomalib predict|test|validate --model DraemPlugin --ckpt_path ...`` builds the model from its defaults and
        then loads the checkpoint; adopting the saved widths and score filter lets such a command load a model
        trained with other sizes (anomalib restores the pre-processor's resize from the checkpoint).
        """
        super().on_load_checkpoint(checkpoint)
        saved = {"normalization": "batch", **checkpoint.get("hyper_parameters", {})}  # before the option existed
        changed = {
            name: saved[name] for name in _NETWORK_ARGUMENTS if name in saved and saved[name] != self.hparams.get(name)
        }
        if changed:
            logger.info("Rebuilding the networks with the checkpoint's arguments %s.", changed)
            self.hparams.update(changed)
            self._build_networks()
            self.model.to(self.device)
        datamodule = self._trainer.datamodule if self._trainer is not None else None
        if isinstance(datamodule, AnomalibDataModule):
            # The datamodule's setup ran before the checkpoint was loaded and copied the pre-processor's resize (of
            # the constructor's image_size) into its datasets; setting up again copies the checkpoint's.
            datamodule.setup(self.trainer.state.fn)
        if _RNG_KEY in checkpoint:
            self.augmenter.set_rng_state(checkpoint[_RNG_KEY], stream=self.global_rank)
