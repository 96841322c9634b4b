"""PyTorch model of DRÆM: a reconstructive auto-encoder and a discriminative U-Net.

Both sub-networks are built from the same two pieces, :func:`conv_block` (two 3x3 conv + BatchNorm + ReLU
layers) and :func:`up_block` (bilinear up-sampling followed by one such layer), with the widths, poolings and
initialisation of the original implementation (Zavrtanik et al., ICCV 2021). ``normalization="group"`` swaps every
BatchNorm for a GroupNorm (:func:`norm_layer`), a departure from the original for small batches (docs/benchmarks.md).

Example:
    >>> import torch
    >>> from draem_plugin.torch_model import DraemPluginModel
    >>> model = DraemPluginModel(reconstructive_width=8, discriminative_width=8)
    >>> reconstruction, logits = model(torch.rand(2, 3, 64, 64))
    >>> reconstruction.shape, logits.shape
    (torch.Size([2, 3, 64, 64]), torch.Size([2, 2, 64, 64]))
    >>> model.eval().forward(torch.rand(2, 3, 64, 64)).pred_score.shape
    torch.Size([2])
"""

from __future__ import annotations

from math import gcd
from typing import Literal

import torch
from anomalib.data import InferenceBatch
from torch import nn
from torch.nn import functional as F

from .anomaly_map import anomaly_map_from_logits, image_score
from .validation import check_seed

__all__ = [
    "DiscriminativeSubNetwork",
    "DraemPluginModel",
    "ReconstructiveSubNetwork",
    "check_input_size",
    "check_normalization",
    "conv_block",
    "norm_layer",
    "up_block",
]

#: Input height and width must be divisible by this (five 2x2 poolings in the discriminative network).
SIZE_MULTIPLE = 32
#: Normalisation layers :func:`norm_layer` builds: the original's BatchNorm, or GroupNorm.
Normalization = Literal["batch", "group"]
#: Groups of a GroupNorm layer (fewer where the channel count is not a multiple).
NORM_GROUPS = 8


def norm_layer(channels: int, normalization: Normalization = "batch") -> nn.Module:
    """The normalisation after each convolution: BatchNorm (original) or GroupNorm of ``NORM_GROUPS`` groups.

    GroupNorm normalises each image on its own, so training and test use the same statistics whatever the batch; it
    has no running statistics, and the authors' released weights (BatchNorm) do not load into it.

    Example:
        >>> norm_layer(16, "group").num_groups, norm_layer(4, "group").num_groups
        (8, 4)
    """
    check_normalization(normalization)
    return nn.BatchNorm2d(channels) if normalization == "batch" else nn.GroupNorm(gcd(NORM_GROUPS, channels), channels)


def check_normalization(normalization: object) -> None:
    """Raise a ``ValueError`` naming the choices unless ``normalization`` is ``"batch"`` or ``"group"``.

    Example:
        >>> check_normalization("group")
    """
    if normalization not in ("batch", "group"):
        msg = f"normalization must be 'batch' (the original's BatchNorm) or 'group' (GroupNorm), got {normalization!r}."
        raise ValueError(msg)


def _conv_norm_relu(in_channels: int, out_channels: int, normalization: Normalization) -> list[nn.Module]:
    return [
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
        norm_layer(out_channels, normalization),
        nn.ReLU(inplace=True),
    ]


def conv_block(
    in_channels: int, out_channels: int, mid_channels: int | None = None, normalization: Normalization = "batch"
) -> nn.Sequential:
    """Two ``3x3 conv -> BatchNorm -> ReLU`` layers, the building block of both sub-networks.

    Example:
        >>> conv_block(3, 8)(torch.rand(1, 3, 16, 16)).shape
        torch.Size([1, 8, 16, 16])
    """
    mid = out_channels if mid_channels is None else mid_channels
    return nn.Sequential(
        *_conv_norm_relu(in_channels, mid, normalization), *_conv_norm_relu(mid, out_channels, normalization)
    )


def up_block(in_channels: int, out_channels: int, normalization: Normalization = "batch") -> nn.Sequential:
    """Bilinear x2 up-sampling (``align_corners=True``) followed by one ``3x3 conv -> BatchNorm -> ReLU``.

    Example:
        >>> up_block(8, 4)(torch.rand(1, 8, 16, 16)).shape
        torch.Size([1, 4, 32, 32])
    """
    return nn.Sequential(
        nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True),
        *_conv_norm_relu(in_channels, out_channels, normalization),
    )


def _check_width(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        msg = f"{name} must be a positive integer (the original uses 128 / 64), got {value!r}."
        raise ValueError(msg)


class ReconstructiveSubNetwork(nn.Module):
    """Auto-encoder without skips: 5 encoder blocks (widths 1, 2, 4, 8, 8 x ``base_width``), 4 poolings.

    Example:
        >>> ReconstructiveSubNetwork(base_width=4)(torch.rand(1, 3, 32, 32)).shape
        torch.Size([1, 3, 32, 32])
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        base_width: int = 128,
        normalization: Normalization = "batch",
    ) -> None:
        super().__init__()
        _check_width("reconstructive_width", base_width)
        b, norm = base_width, normalization
        widths = (b, 2 * b, 4 * b, 8 * b, 8 * b)
        self.encoder = nn.ModuleList(
            conv_block(c_in, c_out, normalization=norm)
            for c_in, c_out in zip((in_channels, *widths[:-1]), widths, strict=True)
        )
        # Each decoder stage up-samples at constant width, then a block narrows it: 8b -> 4b -> 2b -> b -> b.
        stages = ((8 * b, 4 * b), (4 * b, 2 * b), (2 * b, b), (b, b))
        self.decoder = nn.ModuleList(
            nn.Sequential(up_block(c_in, c_in, norm), conv_block(c_in, c_out, c_in, norm)) for c_in, c_out in stages
        )
        self.head = nn.Conv2d(b, out_channels, kernel_size=3, padding=1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Reconstruct ``image`` (``B x C x H x W``, H and W multiples of 16)."""
        x = image
        for i, block in enumerate(self.encoder):
            x = block(F.max_pool2d(x, 2) if i else x)
        for stage in self.decoder:
            x = stage(x)
        return self.head(x)


class DiscriminativeSubNetwork(nn.Module):
    """U-Net: 6 encoder blocks (widths 1, 2, 4, 8, 8, 8 x ``base_width``), 5 poolings, skip connections.

    Example:
        >>> DiscriminativeSubNetwork(base_width=4)(torch.rand(2, 6, 32, 32)).shape
        torch.Size([2, 2, 32, 32])
    """

    def __init__(
        self,
        in_channels: int = 6,
        out_channels: int = 2,
        base_width: int = 64,
        normalization: Normalization = "batch",
    ) -> None:
        super().__init__()
        _check_width("discriminative_width", base_width)
        b, norm = base_width, normalization
        widths = (b, 2 * b, 4 * b, 8 * b, 8 * b, 8 * b)
        self.encoder = nn.ModuleList(
            conv_block(c_in, c_out, normalization=norm)
            for c_in, c_out in zip((in_channels, *widths[:-1]), widths, strict=True)
        )
        # Decoder stage: up-sample (c_in -> c_up), concatenate the encoder skip (c_skip), block -> c_up.
        stages = ((8 * b, 8 * b, 8 * b), (8 * b, 4 * b, 8 * b), (4 * b, 2 * b, 4 * b), (2 * b, b, 2 * b), (b, b, b))
        self.up = nn.ModuleList(up_block(c_in, c_up, norm) for c_in, c_up, _ in stages)
        self.fuse = nn.ModuleList(conv_block(c_up + c_skip, c_up, normalization=norm) for _, c_up, c_skip in stages)
        self.head = nn.Conv2d(b, out_channels, kernel_size=3, padding=1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Segment ``image`` (``B x 6 x H x W``, H and W multiples of 32) into 2-class logits."""
        skips = []
        x = image
        for i, block in enumerate(self.encoder):
            x = block(F.max_pool2d(x, 2) if i else x)
            skips.append(x)
        skips.pop()  # the bottleneck output is the decoder's input, not a skip
        for up, fuse in zip(self.up, self.fuse, strict=True):
            x = fuse(torch.cat((up(x), skips.pop()), dim=1))
        return self.head(x)


class DraemPluginModel(nn.Module):
    """DRÆM network: reconstruct the input, then segment ``[reconstruction, input]`` into normal / anomalous.

    Args:
        reconstructive_width: base width of the reconstructive auto-encoder (original: 128).
        discriminative_width: base width of the discriminative U-Net (original: 64).
        score_filter_size: odd side of the mean filter applied before the image-score max (original: 21).
        channels_last: keep weights and activations in channels-last memory format (faster convolutions on
            recent GPUs and on CPUs with oneDNN); the outputs are the same.
        seed: seed of the weight initialisation, drawn from a generator of its own (torch's global generator is left
            as it was); ``None`` draws from torch's global generator.
        normalization: ``"batch"`` (the original's BatchNorm) or ``"group"`` (GroupNorm, :func:`norm_layer`).

    In training mode ``forward`` returns ``(reconstruction, logits)``; in eval mode an ``InferenceBatch`` with
    ``anomaly_map`` (``B x H x W`` softmax probability of the anomalous class) and ``pred_score`` (``B``).

    Example:
        >>> model = DraemPluginModel()
        >>> sum(p.numel() for p in model.parameters())
        97422725
    """

    def __init__(
        self,
        reconstructive_width: int = 128,
        discriminative_width: int = 64,
        score_filter_size: int = 21,
        channels_last: bool = False,
        seed: int | None = None,
        normalization: Normalization = "batch",
    ) -> None:
        super().__init__()
        if isinstance(score_filter_size, bool) or not isinstance(score_filter_size, int) or score_filter_size < 1:
            msg = f"score_filter_size must be a positive odd integer (original: 21), got {score_filter_size!r}."
            raise ValueError(msg)
        if score_filter_size % 2 == 0:
            msg = f"score_filter_size must be odd so the filtered map keeps the image size, got {score_filter_size}."
            raise ValueError(msg)
        self.score_filter_size = score_filter_size
        check_seed(seed)
        with torch.random.fork_rng(devices=[], enabled=seed is not None):
            if seed is not None:
                torch.manual_seed(seed)
            self.reconstructive_subnetwork = ReconstructiveSubNetwork(
                base_width=reconstructive_width, normalization=normalization
            )
            self.discriminative_subnetwork = DiscriminativeSubNetwork(
                base_width=discriminative_width, normalization=normalization
            )
            self.apply(_init_weights)
        self.channels_last = channels_last
        if channels_last:
            self.to(memory_format=torch.channels_last)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | InferenceBatch:
        """Run both sub-networks on ``image`` (``B x 3 x H x W`` in [0, 1], H and W multiples of 32)."""
        check_input_size(image)
        if self.channels_last:
            image = image.contiguous(memory_format=torch.channels_last)
        reconstruction = self.reconstructive_subnetwork(image)
        logits = self.discriminative_subnetwork(torch.cat((reconstruction, image), dim=1))
        if self.training:
            return reconstruction, logits
        anomaly_map = anomaly_map_from_logits(logits)
        return InferenceBatch(pred_score=image_score(anomaly_map, self.score_filter_size), anomaly_map=anomaly_map)


def check_input_size(image: torch.Tensor) -> None:
    """Raise a ``ValueError`` naming the size and the fix unless ``image`` is ``B x 3 x H x W`` with H, W % 32 == 0.

    Example:
        >>> check_input_size(torch.rand(1, 3, 64, 96))
    """
    if image.ndim != 4 or image.shape[1] != 3:
        msg = f"DraemPluginModel expects a B x 3 x H x W image batch, got shape {tuple(image.shape)}."
        raise ValueError(msg)
    height, width = image.shape[-2:]
    if height % SIZE_MULTIPLE or width % SIZE_MULTIPLE:
        fix_h, fix_w = (max(SIZE_MULTIPLE, round(s / SIZE_MULTIPLE) * SIZE_MULTIPLE) for s in (height, width))
        msg = (
            f"DraemPluginModel needs input height and width that are multiples of {SIZE_MULTIPLE}, got "
            f"{height}x{width}. Resize the images first, e.g. DraemPlugin(image_size=({fix_h}, {fix_w})) or "
            f"--model.image_size [{fix_h},{fix_w}]."
        )
        raise ValueError(msg)


def _init_weights(module: nn.Module) -> None:
    """Original initialisation: conv weights N(0, 0.02); BatchNorm (and GroupNorm) weights N(1, 0.02), biases 0."""
    if isinstance(module, nn.Conv2d):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d | nn.GroupNorm):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)
