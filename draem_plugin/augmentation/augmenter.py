"""DRÆM anomaly synthesis on the batch's device: Perlin masks, augmented textures and the blend.

A training batch of normal images gets, for a random half of its samples, a Perlin-noise mask inside which a
randomly augmented texture is blended in (Zavrtanik et al., ICCV 2021). Everything is batched: the textures come from
a :class:`~.textures.TextureBank` held on the device, and the texture ops run on the subsets of samples that drew
them (:func:`~.texture_ops.apply_random_texture_ops`).

Example:
    >>> import torch
    >>> augmenter = PerlinAnomalyAugmenter(seed=0)  # procedural textures; pass anomaly_source_path=... for DTD
    >>> out = augmenter(torch.rand(4, 3, 64, 64))
    >>> out.image.shape, out.mask.shape, out.label.shape
    (torch.Size([4, 3, 64, 64]), torch.Size([4, 1, 64, 64]), torch.Size([4]))
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import torch
from kornia.geometry.transform import rotate
from torch import Tensor, nn

from ..validation import check_interval, check_probability, check_seed
from .perlin import check_mask_parameters, perlin_mask
from .sampling import uniform_on
from .texture_ops import PAPER_OPS, RANDOM_TEXTURE_OPS, TEXTURE_OPS, apply_random_texture_ops
from .textures import TextureBank

__all__ = ["PRESETS", "AugmentedBatch", "PerlinAnomalyAugmenter"]

logger = logging.getLogger(__name__)


class AugmentedBatch(NamedTuple):
    """Output of :class:`PerlinAnomalyAugmenter`.

    Attributes:
        image: ``(B, 3, H, W)`` images with synthetic anomalies (input dtype and device).
        mask: ``(B, 1, H, W)`` anomaly masks in ``{0, 1}``.
        label: ``(B,)`` 1 where the mask is non-empty, else 0.
        clean: ``(B, 3, H, W)`` the anomaly-free images (after the optional normal-image rotation),
            i.e. the reconstruction target.
    """

    image: Tensor
    mask: Tensor
    label: Tensor
    clean: Tensor


PRESETS: dict[str, dict[str, Any]] = {
    # The released code: defaults plus a 30 % rotation of the clean image by (-90, 90).
    "original": {"normal_rotation_probability": 0.3},
    # The paper's text. The paper's beta in [0.1, 1] weights the texture, i.e. the image weight is in [0, 0.9].
    # It draws the threshold "uniformly" without a range: (0.3, 0.7) is our choice.
    "paper": {
        "beta_range": (0.0, 0.9),
        "threshold": (0.3, 0.7),
        "normal_rotation_probability": 0.3,
        "normal_rotation_range": (-45.0, 45.0),
        "ops": PAPER_OPS,
    },
}


class PerlinAnomalyAugmenter(nn.Module):
    """Synthesise DRÆM anomalies on a batch of normal images, on the batch's device.

    Steps, all batched: (1) with ``normal_rotation_probability`` rotate the clean image by
    ``U(normal_rotation_range)`` degrees; (2) pick each sample as anomalous with ``anomaly_probability``;
    (3) for those, draw a Perlin mask (:func:`~.perlin.perlin_mask`), a texture from the
    :class:`~.textures.TextureBank` and ``num_ops`` ops from ``ops``; (4) inside the mask blend
    ``beta * image + (1 - beta) * texture`` with ``beta ~ U(beta_range)``; pixels outside it are untouched.
    A sample whose mask came out empty counts as normal (label 0), as in the original.

    Randomness comes from one CPU generator, created on first use and seeded from ``seed`` (or, if ``None``, once
    from torch's global RNG, so ``lightning.seed_everything`` fixes it); its draws are copied to the batch's device.

    Args:
        anomaly_source_path: Folder (or file) of texture images, e.g. the DTD ``images`` folder;
            ``None`` uses procedural Perlin textures and logs a warning.
        source_size: Size the textures are stored at.
        anomaly_probability: Fraction of samples that get an anomaly.
        beta_range: Range of the image weight inside the mask (texture opacity is ``1 - beta``).
        threshold: Perlin threshold in ``(0, 1)``, or a ``(lo, hi)`` range drawn per sample.
        scale_exponent_range: Lattice cells ``2**randint(lo, hi)`` per axis, ``hi`` exclusive.
        rotation_range: Rotation of the Perlin noise in degrees.
        num_ops: Texture ops per sample, drawn without replacement from ``ops``.
        ops: Op names (default: all of :data:`~.texture_ops.TEXTURE_OPS`).
        normal_rotation_probability: Probability of rotating the clean image first (original code: 0.3).
        normal_rotation_range: Rotation range of the clean image in degrees.
        max_source_images: Load a random subset of this many texture files.
        seed: Seed of the random stream (and of the texture subset).

    Example:
        >>> augmenter = PerlinAnomalyAugmenter.from_preset("original", seed=0)
        >>> batch = augmenter(torch.rand(8, 3, 32, 32))
        >>> bool(((batch.image == batch.clean) | (batch.mask == 1)).all())
        True
    """

    def __init__(
        self,
        anomaly_source_path: str | Path | None = None,
        source_size: int | tuple[int, int] = 256,
        anomaly_probability: float = 0.5,
        beta_range: tuple[float, float] = (0.0, 0.8),
        threshold: float | tuple[float, float] = 0.5,
        scale_exponent_range: tuple[int, int] = (0, 6),
        rotation_range: tuple[float, float] = (-90.0, 90.0),
        num_ops: int = 3,
        ops: Sequence[str] | None = None,
        normal_rotation_probability: float = 0.0,
        normal_rotation_range: tuple[float, float] = (-90.0, 90.0),
        max_source_images: int | None = None,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        self.anomaly_probability = check_probability(anomaly_probability, "anomaly_probability")
        self.normal_rotation_probability = check_probability(normal_rotation_probability, "normal_rotation_probability")
        self.beta_range = check_interval(beta_range, "beta_range", 0.0, 1.0)
        self.normal_rotation_range = check_interval(normal_rotation_range, "normal_rotation_range")
        check_mask_parameters(scale_exponent_range, rotation_range, threshold)
        self.rotation_range = (float(rotation_range[0]), float(rotation_range[1]))
        self.threshold = tuple(map(float, threshold)) if isinstance(threshold, (tuple, list)) else float(threshold)
        self.scale_exponent_range = (scale_exponent_range[0], scale_exponent_range[1])
        self.ops = TEXTURE_OPS if ops is None else tuple(ops)
        unknown = [name for name in self.ops if name not in RANDOM_TEXTURE_OPS]
        if unknown or len(set(self.ops)) != len(self.ops):
            msg = f"ops must be distinct names from {list(TEXTURE_OPS)}, got {list(self.ops)!r}."
            raise ValueError(msg)
        if not (isinstance(num_ops, int) and 1 <= num_ops <= len(self.ops)):
            msg = f"num_ops must be an int between 1 and len(ops) = {len(self.ops)}, got {num_ops!r}."
            raise ValueError(msg)
        self.num_ops = num_ops
        check_seed(seed)
        self.bank = TextureBank(anomaly_source_path, source_size, max_images=max_source_images, seed=seed or 0)
        self._seed = seed
        self._host_generator: torch.Generator | None = None
        self._pending_state: Tensor | None = None

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> PerlinAnomalyAugmenter:
        """Build the ``"original"`` (released code) or ``"paper"`` (paper's text) setting, with overrides.

        An override of ``None`` keeps the preset's value.

        ``"paper"``: image weight in ``[0, 0.9]`` (the paper's texture weight in ``[0.1, 1]``), threshold
        drawn from ``(0.3, 0.7)`` (our choice, the paper gives no range), clean-image rotation ``(-45, 45)``
        with probability 0.3, and the paper's 7 ops (:data:`~.texture_ops.PAPER_OPS`).

        Example:
            >>> PerlinAnomalyAugmenter.from_preset("paper", seed=0).beta_range
            (0.0, 0.9)
        """
        if name not in PRESETS:
            msg = f"unknown augmentation preset {name!r}; choose one of {sorted(PRESETS)}."
            raise ValueError(msg)
        return cls(**{**PRESETS[name], **{key: value for key, value in overrides.items() if value is not None}})

    def _generator(self) -> torch.Generator:
        """The stream's generator, created (and seeded or restored) on first use.

        It lives on the CPU whatever the batch's device: the augmenter draws only a few numbers per sample (choices,
        angles, lattice gradients, op parameters), and drawing them on the host means a CUDA step never waits for
        the device to tell which samples get an anomaly. The stream is the same on every device type.
        """
        if self._host_generator is None:
            generator = torch.Generator()
            if self._pending_state is not None:
                self._restore(generator, self._pending_state)
                self._pending_state = None
            else:
                if self._seed is None:
                    self._seed = int(torch.randint(2**62, (1,)).item())
                generator.manual_seed(self._seed)
            self._host_generator = generator
        return self._host_generator

    @staticmethod
    def _restore(generator: torch.Generator, state: Tensor) -> None:
        """Load ``state``; a state of another generator type (e.g. a CUDA one) seeds the stream from its hash."""
        try:
            generator.set_state(state)
        except RuntimeError:
            logger.warning(
                "The saved augmenter RNG state (%d bytes) is not the state of a CPU generator; the random stream "
                "continues from a seed derived from it.",
                state.numel(),
            )
            generator.manual_seed(int.from_bytes(hashlib.sha256(state.numpy().tobytes()).digest()[:7], "little"))

    def reseed(self, seed: int) -> None:
        """Restart the random stream from ``seed`` on every device (e.g. ``base + global_rank`` under DDP)."""
        if not isinstance(seed, int):
            msg = f"seed must be an int, got {seed!r}."
            raise ValueError(msg)
        self._seed = seed
        self._host_generator = None
        self._pending_state = None

    def get_rng_state(self) -> Tensor:
        """State (CPU uint8 tensor) of the generator in use, to save with a checkpoint."""
        if self._pending_state is not None:
            return self._pending_state.clone()
        return self._generator().get_state()

    def set_rng_state(self, state: Tensor, stream: int = 0) -> None:
        """Continue the random stream from ``state`` (from :meth:`get_rng_state`) at the next draw.

        Args:
            state: the saved generator state.
            stream: 0 continues ``state`` itself; another number (e.g. a DDP rank other than 0, whose own state a
                checkpoint does not hold) starts a stream seeded from ``state`` and that number, so that every rank
                continues with different anomalies.
        """
        if not isinstance(state, Tensor) or state.dtype != torch.uint8 or state.ndim != 1:
            msg = f"state must be the 1-D uint8 tensor returned by get_rng_state(), got {state!r:.80}."
            raise ValueError(msg)
        if stream:
            digest = hashlib.sha256(state.numpy().tobytes() + stream.to_bytes(4, "little")).digest()
            self.reseed(int.from_bytes(digest[:7], "little"))
            return
        self._pending_state = state.detach().cpu().clone()
        self._host_generator = None

    @torch.no_grad()
    def forward(self, image: Tensor) -> AugmentedBatch:
        """Add synthetic anomalies to a batch of normal images ``(B, 3, H, W)`` in ``[0, 1]``.

        When no sample is changed, ``image`` and ``clean`` of the result are the input tensor itself. Autocast is
        off inside (``bf16-mixed`` / ``16-mixed`` training): the noise, rotations and blend run in float32.
        """
        with torch.autocast(image.device.type, enabled=False):
            return self._synthesise(image)

    def _synthesise(self, image: Tensor) -> AugmentedBatch:
        """:meth:`forward` without the autocast guard."""
        if image.ndim != 4 or image.shape[1] != 3 or not image.is_floating_point():
            msg = (
                f"image must be a float (B, 3, H, W) batch in [0, 1], got dtype {image.dtype} and shape "
                f"{tuple(image.shape)}; convert grey images with image.expand(-1, 3, -1, -1)."
            )
            raise ValueError(msg)
        batch, _, height, width = image.shape
        device = image.device
        generator = self._generator()
        compute = torch.float32 if image.dtype in (torch.float16, torch.bfloat16) else image.dtype
        draws = torch.rand(batch, 2, generator=generator).cpu()  # drawn on the host: no wait for the device

        clean = image
        rotated = (draws[:, 0] < self.normal_rotation_probability).nonzero().squeeze(1).to(device, non_blocking=True)
        if rotated.numel():
            angle = uniform_on(rotated.numel(), *self.normal_rotation_range, generator, device)
            turned = rotate(image.index_select(0, rotated).to(compute), angle, padding_mode="zeros")
            clean = image.index_copy(0, rotated, turned.to(image.dtype))

        augmented = clean
        mask = image.new_zeros(batch, 1, height, width)
        anomalous = (draws[:, 1] < self.anomaly_probability).nonzero().squeeze(1).to(device, non_blocking=True)
        count = anomalous.numel()
        if count:
            masks = perlin_mask(
                count,
                height,
                width,
                scale_exponent_range=self.scale_exponent_range,
                rotation_range=self.rotation_range,
                threshold=self.threshold,
                generator=generator,
                device=device,
            )
            textures = self.bank.sample(count, height, width, generator=generator, device=device)
            textures = apply_random_texture_ops(textures, self.num_ops, self.ops, generator)
            beta = uniform_on((count, 1, 1, 1), *self.beta_range, generator, device).to(compute)
            normal = clean.index_select(0, anomalous).to(compute)
            # beta * image + (1 - beta) * texture inside the mask; a zero weight leaves the pixel exactly as it was
            blended = torch.lerp(normal, textures.to(compute), (1.0 - beta) * masks.to(compute))
            augmented = clean.index_copy(0, anomalous, blended.to(image.dtype))
            mask.index_copy_(0, anomalous, masks.to(mask.dtype))
        return AugmentedBatch(augmented, mask, mask.flatten(1).amax(dim=1), clean)

    def extra_repr(self) -> str:
        """Source, bank size and the synthesis settings."""
        return (
            f"source={self.bank.source or 'procedural'}, bank_size={len(self.bank)}, "
            f"anomaly_probability={self.anomaly_probability}, beta_range={self.beta_range}, "
            f"threshold={self.threshold}, num_ops={self.num_ops}, ops={list(self.ops)}, "
            f"normal_rotation_probability={self.normal_rotation_probability}"
        )
