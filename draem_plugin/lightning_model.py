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
import math
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal, NamedTuple

import torch
from anomalib import LearningType, TaskType
from anomalib.data import AnomalibDataModule, Batch
from anomalib.data.transforms.utils import extract_transforms_by_type
from anomalib.metrics import AUPR, AUPRO, AUROC, Evaluator, F1Score
from anomalib.models.components import AnomalibModule
from anomalib.post_processing import PostProcessor
from anomalib.pre_processing import PreProcessor
from anomalib.visualization import Visualizer
from lightning.pytorch.utilities.types import STEP_OUTPUT
from PIL import Image
from torchvision.transforms.v2 import Compose, Normalize, Resize

from .augmenter import PerlinAnomalyAugmenter
from .data.train_cache import TrainImageCache, random_transforms
from .loss import DraemPluginLoss
from .torch_model import SIZE_MULTIPLE, DraemPluginModel

__all__ = ["DraemPlugin"]

logger = logging.getLogger(__name__)

_RNG_KEY = "draem_plugin_augmenter_rng_state"
_DATA_SEED_KEY = "draem_plugin_data_seed"

#: Training steps between host-side NaN / inf checks of the loss, per device type (``"default"``: all others). A
#: check waits for the device, which costs nothing on the CPU; every epoch end and checkpoint is checked as well.
FINITE_CHECK_INTERVAL: dict[str, int] = {"cpu": 1, "default": 32}
_LOSS_NAMES = ("loss", "l2", "ssim", "focal")
#: PIL modes that anomalib's ``read_image`` (``convert("RGB")``) clips to black or white: 16/32-bit and float grey.
_HIGH_BIT_DEPTH = ("I", "F")
_MAX_LISTED = 10


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
        compile_networks: train through ``torch.compile`` of the networks (the first steps compile; evaluation,
            export and checkpoints use the plain modules, which share the weights).
        seed: seed of the augmenter's random stream (each DDP rank adds its rank) and of the cached images'
            shuffling. ``None`` draws it from torch's global generator, so ``seed_everything`` makes runs reproducible.
        cache_train_images: decode the training split once through the datamodule's loader and keep it on the
            device (see :class:`~draem_plugin.data.train_cache.TrainImageCache`): epochs then never wait for disk,
            PNG decoding or worker start-up. Skipped, with a warning, when the datamodule's training augmentations
            are random or the images would take more than half the free memory.

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
        compile_networks: bool = False,
        seed: int | None = None,
        cache_train_images: bool = True,
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
        self._nonfinite: torch.Tensor | None = None  # per-term count of NaN / inf losses since the last check
        self._unchecked_steps = 0
        self._single_image_warned = False
        self._data_seed = 0  # shuffling seed of the cached training images, the same on every rank
        self._train_cache: TrainImageCache | None = None
        # Kept out of the module tree: it shares the parameters of ``self.model`` and must not enter the state_dict.
        object.__setattr__(self, "_train_network", torch.compile(self.model) if compile_networks else self.model)

    @classmethod
    def configure_pre_processor(cls, image_size: tuple[int, int] | None = None) -> PreProcessor:
        """Resize to ``image_size`` (default 256x256); no ImageNet normalisation, as in the original.

        Bilinear without antialiasing, like the original's ``cv2.resize`` and like the exported model (anomalib
        exports ``Resize`` without antialiasing), so ``anomalib predict`` and the ONNX/OpenVINO export agree.
        """
        return PreProcessor(transform=Compose([Resize(image_size or (256, 256), antialias=False)]))

    @staticmethod
    def configure_evaluator() -> Evaluator:
        """Image AUROC and F1, pixel AUROC, AP (area under the PR curve) and AUPRO on the test set.

        Validation reports image and pixel AUROC (as anomalib's Fastflow does), for ``anomalib validate``, early
        stopping and checkpoint monitoring. Pixel metrics are non-strict: a set without masks reports image metrics
        only.
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
        """Check the datamodule's images; give each DDP rank its own augmenter stream (a checkpoint's comes later)."""
        self._check_data(stage)
        if stage == "fit":
            self._nonfinite, self._unchecked_steps = None, 0
            base = self.hparams.seed
            if base is None:
                base = int(torch.randint(2**31 - 1, (1,)).item())
            self._data_seed = base
            self.augmenter.reseed(base + self.global_rank)

    def on_fit_start(self) -> None:
        """Serve the training images from the device after one decoding pass (``cache_train_images``)."""
        if not self.hparams.get("cache_train_images", False):
            return
        datamodule = self.trainer.datamodule
        if not isinstance(datamodule, AnomalibDataModule):
            logger.info("Training images are not cached: the training data does not come from an anomalib datamodule.")
            return
        randomised = random_transforms(getattr(datamodule, "train_augmentations", None))
        if randomised:
            logger.warning(
                "Training images are not cached on the device: the datamodule's train_augmentations hold random "
                "transforms (%s), which must be drawn again each epoch, so every epoch decodes the images again. Set "
                "cache_train_images=False to silence this.",
                ", ".join(randomised),
            )  # fmt: skip
            return
        if self.trainer.overfit_batches > 0:
            logger.info("Training images are not cached: overfit_batches replaces the training sampler.")
            return
        seed = self.trainer.strategy.broadcast(self._data_seed, src=0)
        self._train_cache = TrainImageCache(datamodule, self.device, seed, self.trainer.world_size, self.global_rank)
        self._train_cache.install()

    def teardown(self, stage: str) -> None:
        """Give the datamodule its own training loader back."""
        if self._train_cache is not None:
            self._train_cache.remove()
            self._train_cache = None
        super().teardown(stage)

    def on_train_start(self) -> None:
        """Refuse a pre-processor that normalises: DRÆM blends textures on images in [0, 1]."""
        if self.pre_processor and extract_transforms_by_type(self.pre_processor.transform, Normalize):
            msg = "DraemPlugin expects images in [0, 1]: remove Normalize from the pre-processor's transform."
            raise ValueError(msg)

    def _check_data(self, stage: str) -> None:
        """Check the images of the splits ``stage`` reads, before it starts (datamodules only, not bare dataloaders)."""
        datamodule = self.trainer.datamodule
        if datamodule is None:
            return
        for split in {"fit": ("train", "val"), "validate": ("val",), "test": ("test",)}.get(stage, ()):
            dataset = getattr(datamodule, f"{split}_data", None)
            if dataset is not None:
                self._check_split(f"{type(datamodule).__name__} {split} split", split, dataset)

    def _check_split(self, name: str, split: str, dataset: Any) -> None:  # noqa: ANN401
        """Refuse an empty train or test split and images anomalib would misread; log resizing and undefined metrics.

        Every image (and mask) is decoded once in threads, as the data loader will, so a corrupt file is named here
        instead of failing inside a loader worker; that costs about one pass over the split's files.
        """
        if len(dataset) == 0:
            if split == "val":
                return  # Lightning skips validation with its own warning
            msg = (
                f"The {name} is empty: no images to {'train on' if split == 'train' else 'evaluate'}. Check the "
                "folders the datamodule reads (Folder: normal_dir, abnormal_dir, normal_test_dir; MVTecAD: "
                "<root>/<category>/train and test) and its test_split_mode / val_split_mode, which move images "
                "between splits."
            )
            raise ValueError(msg)
        samples = getattr(dataset, "samples", None)
        if samples is None:  # not an anomalib dataset: nothing to inspect
            return
        scan = _scan_images(samples["image_path"])
        masks = [path for path in samples.get("mask_path", ()) if isinstance(path, str) and path]
        unreadable = scan.unreadable + _scan_images(masks).unreadable
        problems = []
        if unreadable:
            problems.append(
                f"{len(unreadable)} file(s) cannot be read: {_listing(unreadable)}. Remove or replace them"
            )
        if scan.high_bit_depth:
            problems.append(
                f"{len(scan.high_bit_depth)} image(s) are 16-bit, 32-bit or floating-point grey: "
                f"{_listing(scan.high_bit_depth)}. anomalib reads images with PIL's convert('RGB'), which clips such "
                "values to black or white; convert them to 8 bits first, e.g. Image.fromarray((np.asarray(image) "
                ">> 8).astype(np.uint8)) for 16-bit PNGs"
            )
        problems += self._size_problems(name, scan.sizes)
        if problems:
            raise ValueError(f"The {name} cannot be used: " + "; ".join(problems) + ".")
        converted = {mode: n for mode, n in scan.modes.items() if mode != "RGB"}
        if converted:
            logger.info(
                "%s: images in modes %s are converted to RGB (grey copied to three channels, alpha dropped).",
                name, converted,
            )  # fmt: skip
        if split == "test":
            self._warn_undefined_metrics(name, dataset, samples)

    def _size_problems(self, name: str, sizes: Counter[tuple[int, int]]) -> list[str]:
        """Log how the pre-processor resizes ``sizes``; the problem if the networks cannot take them unresized."""
        resizes = extract_transforms_by_type(self.pre_processor.transform, Resize) if self.pre_processor else []
        if not resizes:
            if all(h % SIZE_MULTIPLE == 0 and w % SIZE_MULTIPLE == 0 for h, w in sizes):
                return []
            return [
                f"the images are {_sizes(sizes)} and the pre-processor does not resize them, but the networks need "
                f"sides that are multiples of {SIZE_MULTIPLE}; keep the default pre-processor (it resizes to "
                "image_size) or add Resize((H, W)) to yours"
            ]
        target = tuple(resizes[0].size) if isinstance(resizes[0].size, Sequence) else ()
        other = Counter({size: n for size, n in sizes.items() if size != target})
        if len(target) != 2 or not other:
            return []
        ratio = target[1] / target[0]
        stretched = any(abs(math.log(w / h / ratio)) > 0.01 for h, w in other)
        message = "%s: %d image(s) of %s are resized to %dx%d by the pre-processor (image_size)."
        args = (name, other.total(), _sizes(other), *target)
        if stretched:
            logger.warning(
                message + " Their aspect ratio changes, which stretches defects too; pass an image_size (H, W) of "
                "multiples of %d closer to the images' aspect ratio to keep it.",
                *args, SIZE_MULTIPLE,
            )  # fmt: skip
        else:
            logger.info(message, *args)
        return []

    def _warn_undefined_metrics(self, name: str, dataset: Any, samples: Any) -> None:  # noqa: ANN401
        """Warn about test metrics that are skipped (no masks) or meaningless (one class only)."""
        metrics = self.evaluator.test_metrics if self.evaluator else []
        pixel = [metric.name for metric in metrics if "gt_mask" in metric.fields]
        if pixel and getattr(dataset, "task", None) == TaskType.CLASSIFICATION:
            logger.warning(
                "The %s has no ground-truth masks: the pixel metrics (%s) are skipped and only image metrics are "
                "reported. Give the masks (Folder(mask_dir=...), MVTecAD's ground_truth folder) to evaluate the "
                "anomaly maps.",
                name, ", ".join(pixel),
            )  # fmt: skip
        labels = set(samples["label_index"].tolist()) if "label_index" in samples else set()
        if len(labels) == 1:
            present, missing = ("normal", "anomalous") if labels == {0} else ("anomalous", "normal")
            logger.warning(
                "The %s holds only %s images: AUROC, AUPR, AUPRO and F1 need both classes and report meaningless "
                "values (0 or NaN). Add %s test images (Folder: abnormal_dir, normal_test_dir; MVTecAD: "
                "test/<defect>, test/good) for meaningful metrics.",
                name, present, missing,
            )  # fmt: skip

    def _pair_single_image(self, image: torch.Tensor) -> torch.Tensor:
        """Two copies of a lone 32x32 image (each gets its own anomaly): BatchNorm cannot train on one value."""
        if not self._single_image_warned:
            self._single_image_warned = True
            logger.warning(
                "A training batch holds a single %dx%d image, which leaves one value per channel at the U-Net's "
                "bottleneck, where BatchNorm cannot normalise; such batches train on two differently augmented "
                "copies of the image. Use image_size >= 64, or a train_batch_size that leaves no last batch of one.",
                *image.shape[-2:],
            )  # fmt: skip
        return image.repeat(2, 1, 1, 1)

    def _track_finite(self, loss: torch.Tensor, terms: dict[str, torch.Tensor]) -> None:
        """Count NaN / inf loss terms on the device; look at the count every ``FINITE_CHECK_INTERVAL`` steps."""
        values = torch.stack([loss.detach(), *(terms[name].detach() for name in _LOSS_NAMES[1:])])
        count = (~torch.isfinite(values)).int()
        self._nonfinite = count if self._nonfinite is None else self._nonfinite + count
        self._unchecked_steps += 1
        if self._unchecked_steps >= FINITE_CHECK_INTERVAL.get(loss.device.type, FINITE_CHECK_INTERVAL["default"]):
            self._check_finite()

    def _check_finite(self) -> None:
        """Raise ``FloatingPointError`` naming the terms if a loss since the last check was NaN or inf."""
        if self._nonfinite is None:
            return
        counts, steps = self._nonfinite.tolist(), self._unchecked_steps
        self._nonfinite, self._unchecked_steps = None, 0
        stop = any(counts)
        if self._trainer is not None:  # all DDP ranks stop together: one rank stopping alone would hang the others
            stop = self.trainer.strategy.reduce_boolean_decision(stop, all=False)
        if not stop:
            return
        where = f"epoch {self.current_epoch}, step {self.global_step}"
        when = f"at {where}" if steps == 1 else f"within the {steps} steps up to {where}"
        terms = ", ".join(f"{name} ({n}x)" if steps > 1 else name for name, n in zip(_LOSS_NAMES, counts) if n)
        terms = terms or "the loss of another DDP rank"
        msg = (
            f"The training loss is NaN or inf {when}; not finite: {terms}. Training stops here, so no checkpoint with "
            f"NaN weights is written (earlier checkpoints are intact). {self._nonfinite_fixes()}"
        )
        raise FloatingPointError(msg)

    def _check_finite_weights(self) -> None:
        """Raise ``FloatingPointError`` instead of saving NaN / inf weights."""
        tensors = {name: t for name, t in self.model.state_dict().items() if t.is_floating_point()}
        finite = torch.stack([torch.isfinite(t).all() for t in tensors.values()]).tolist()
        bad = [name for name, ok in zip(tensors, finite, strict=True) if not ok]
        if bad:
            msg = (
                f"The network weights hold NaN or inf ({_listing(bad)}), so no checkpoint is written: training "
                f"diverged. {self._nonfinite_fixes()}"
            )
            raise FloatingPointError(msg)

    def _nonfinite_fixes(self) -> str:
        """What to change after a NaN / inf loss or weight."""
        precision = self.trainer.precision if self._trainer is not None else "unknown"
        return (
            f"Fixes: lower lr (set to {self.hparams.lr}), train in full precision (precision='32-true'; now "
            f"{precision}), clip gradients (gradient_clip_val), and check the training images (values in [0, 1])."
        )

    def training_step(self, batch: Batch, *args: Any, **kwargs: Any) -> STEP_OUTPUT:  # noqa: ANN401
        """Synthesise anomalies on the device, reconstruct, segment, and return the loss."""
        del args, kwargs
        image = batch.image
        if image.shape[0] == 1 and (image.shape[-2] // SIZE_MULTIPLE) * (image.shape[-1] // SIZE_MULTIPLE) == 1:
            image = self._pair_single_image(image)
        augmented = self.augmenter(image)
        reconstruction, logits = self._train_network(augmented.image)
        terms = self.loss.terms(augmented.clean, reconstruction, augmented.mask, logits)
        loss = terms["l2"] + terms["ssim"] + terms["focal"]
        self._track_finite(loss, terms)
        batch_size = batch.image.shape[0]
        self.log("train_loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=batch_size)
        self.log_dict({f"train_{k}": v for k, v in terms.items()}, on_epoch=True, batch_size=batch_size)
        return {"loss": loss}

    def validation_step(self, batch: Batch, *args: Any, **kwargs: Any) -> STEP_OUTPUT:  # noqa: ANN401
        """Predict anomaly maps and scores for a validation batch."""
        del args, kwargs
        return batch.update(**self.model(batch.image)._asdict())

    def on_train_epoch_end(self) -> None:
        """Look for NaN / inf losses not checked yet (see ``FINITE_CHECK_INTERVAL``)."""
        self._check_finite()

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Refuse NaN / inf weights; also save the augmenter's random state, so a resumed run does not replay epochs."""
        self._check_finite()
        self._check_finite_weights()
        super().on_save_checkpoint(checkpoint)
        checkpoint[_RNG_KEY] = self.augmenter.get_rng_state()
        checkpoint[_DATA_SEED_KEY] = self._data_seed

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Adopt the checkpoint's network sizes; restore the augmenter's random state (per rank) and shuffling seed."""
        super().on_load_checkpoint(checkpoint)  # restores the pre-processor's resize, among others
        self._adopt_network_arguments(checkpoint.get("hyper_parameters", {}))
        datamodule = self._trainer.datamodule if self._trainer is not None else None
        if isinstance(datamodule, AnomalibDataModule):
            # The datamodule's setup ran before the checkpoint was loaded and copied the pre-processor's resize (of
            # the constructor's image_size) into its datasets; setting up again copies the checkpoint's.
            datamodule.setup(self.trainer.state.fn)
        self._data_seed = checkpoint.get(_DATA_SEED_KEY, self._data_seed)
        state = checkpoint.get(_RNG_KEY)
        if state is None:
            return
        self.augmenter.set_rng_state(state)
        rank = self.global_rank if self._trainer is not None else 0
        if rank:
            digest = hashlib.sha256(state.numpy().tobytes() + rank.to_bytes(4, "little")).digest()
            self.augmenter.reseed(int.from_bytes(digest[:7], "little"))

    def _adopt_network_arguments(self, saved: dict[str, Any]) -> None:
        """Rebuild the networks with the checkpoint's sizes where they differ from this instance's.

        ``anomalib predict|test|validate --model DraemPlugin --ckpt_path ...`` builds the model from its defaults
        and then loads the checkpoint; adopting the saved widths and score filter lets such a command load a model
        trained with other sizes (the pre-processor's resize is restored from the checkpoint by anomalib).
        """
        names = ("reconstructive_width", "discriminative_width", "score_filter_size", "channels_last")
        changed = {name: saved[name] for name in names if name in saved and saved[name] != self.hparams.get(name)}
        if not changed:
            return
        logger.info("Rebuilding the networks with the checkpoint's arguments %s.", changed)
        self.hparams.update(changed)
        self.model = DraemPluginModel(**{name: self.hparams[name] for name in names}).to(self.device)
        network = torch.compile(self.model) if self.hparams.get("compile_networks") else self.model
        object.__setattr__(self, "_train_network", network)


def _check_optimiser(lr: float, milestones: Sequence[float], gamma: float) -> None:
    if not (lr > 0 and math.isfinite(lr)):
        msg = f"lr must be positive and finite (original: 1e-4), got {lr!r}."
        raise ValueError(msg)
    if not all(0 < m < 1 for m in milestones):
        msg = f"lr_milestones are fractions of max_epochs in (0, 1) (original: (0.8, 0.9)), got {tuple(milestones)!r}."
        raise ValueError(msg)
    if not 0 < gamma <= 1:
        msg = f"lr_gamma must be in (0, 1] (original: 0.2), got {gamma!r}."
        raise ValueError(msg)


class _ImageScan(NamedTuple):
    """What a full decode of a split's image files found."""

    sizes: Counter[tuple[int, int]]  # (height, width) -> number of images
    modes: Counter[str]
    unreadable: list[str]  # "path (reason)"
    high_bit_depth: list[str]


def _probe(path: str) -> tuple[str, tuple[int, int]] | str:
    """Decode ``path`` (JPEG at 1/8 scale, which still reads all of it): its PIL mode and size, or why it failed."""
    try:
        with Image.open(path) as image:
            mode, (width, height) = image.mode, image.size
            if image.format == "JPEG":
                image.draft(mode, (max(1, width // 8), max(1, height // 8)))
            image.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        return f"{type(error).__name__}: {error}"
    return mode, (height, width)


def _scan_images(paths: Iterable[str]) -> _ImageScan:
    """Decode every file of ``paths`` in threads, as the data loader will, and summarise sizes, modes and failures."""
    scan = _ImageScan(Counter(), Counter(), [], [])
    paths = list(paths)
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        for path, result in zip(paths, pool.map(_probe, paths), strict=True):
            if isinstance(result, str):
                scan.unreadable.append(f"{path} ({result})")
                continue
            mode, size = result
            scan.modes[mode] += 1
            scan.sizes[size] += 1
            if mode.split(";")[0] in _HIGH_BIT_DEPTH:
                scan.high_bit_depth.append(f"{path} ({mode})")
    return scan


def _listing(items: Sequence[str]) -> str:
    """Up to ``_MAX_LISTED`` items, comma-separated, with the number left out."""
    shown = ", ".join(items[:_MAX_LISTED])
    return shown + (f", ... ({len(items) - _MAX_LISTED} more)" if len(items) > _MAX_LISTED else "")


def _sizes(sizes: Counter[tuple[int, int]]) -> str:
    """``HxW (count)`` of the most common sizes."""
    return _listing([f"{h}x{w} ({n})" for (h, w), n in sizes.most_common()])
