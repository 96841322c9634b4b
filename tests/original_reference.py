"""An independent reference of the original DRÆM networks, written from the published layer list of ``model_unet.py``.

Module names, widths and the order of concatenation are those of the original; the weights and BatchNorm statistics
are random (:func:`randomised`), and :func:`save_original` writes them as the original training script does:
``torch.save(model.state_dict(), "<run>_<category>_.pckl")`` and ``"<run>_<category>__seg.pckl"``.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

RUN = "DRAEM_test_0.0001_700_bs8"


def conv_bn_relu(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


def block(c_in: int, c_out: int, mid: int | None = None) -> nn.Sequential:
    return nn.Sequential(*conv_bn_relu(c_in, mid or c_out), *conv_bn_relu(mid or c_out, c_out))


def up(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True), *conv_bn_relu(c_in, c_out))


class OriginalReconstructive(nn.Module):
    """ReconstructiveSubNetwork: encoder.block1-5 (b, 2b, 4b, 8b, 8b), decoder.up1-4 / db1-4, decoder.fin_out."""

    def __init__(self, b: int) -> None:
        super().__init__()
        self.encoder, self.decoder = nn.Module(), nn.Module()
        for i, (c_in, c_out) in enumerate(
            zip((3, b, 2 * b, 4 * b, 8 * b), (b, 2 * b, 4 * b, 8 * b, 8 * b), strict=True)
        ):
            setattr(self.encoder, f"block{i + 1}", block(c_in, c_out))
        for i, (c, c_out) in enumerate(((8 * b, 4 * b), (4 * b, 2 * b), (2 * b, b), (b, b))):
            setattr(self.decoder, f"up{i + 1}", up(c, c))
            setattr(self.decoder, f"db{i + 1}", block(c, c_out, mid=c))
        self.decoder.fin_out = nn.Sequential(nn.Conv2d(b, 3, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i in range(5):
            x = getattr(self.encoder, f"block{i + 1}")(F.max_pool2d(x, 2) if i else x)
        for i in range(4):
            x = getattr(self.decoder, f"db{i + 1}")(getattr(self.decoder, f"up{i + 1}")(x))
        return self.decoder.fin_out(x)


class OriginalDiscriminative(nn.Module):
    """DiscriminativeSubNetwork: encoder_segment.block1-6, decoder_segment.up_b/db_b, up1-4/db1-4, fin_out."""

    def __init__(self, b: int) -> None:
        super().__init__()
        self.encoder_segment, self.decoder_segment = nn.Module(), nn.Module()
        widths = (b, 2 * b, 4 * b, 8 * b, 8 * b, 8 * b)
        for i, (c_in, c_out) in enumerate(zip((6, *widths[:-1]), widths, strict=True)):
            setattr(self.encoder_segment, f"block{i + 1}", block(c_in, c_out))
        stages = (
            ("b", 8 * b, 8 * b, 8 * b),
            ("1", 8 * b, 4 * b, 8 * b),
            ("2", 4 * b, 2 * b, 4 * b),
            ("3", 2 * b, b, 2 * b),
            ("4", b, b, b),
        )
        for name, c_in, c_up, c_skip in stages:
            setattr(self.decoder_segment, f"up{name}", up(c_in, c_up))
            setattr(self.decoder_segment, f"db{name}", block(c_up + c_skip, c_up))
        self.decoder_segment.fin_out = nn.Sequential(nn.Conv2d(b, 2, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = []
        for i in range(6):
            x = getattr(self.encoder_segment, f"block{i + 1}")(F.max_pool2d(x, 2) if i else x)
            features.append(x)
        x = features.pop()
        for name in ("b", "1", "2", "3", "4"):
            up_x = getattr(self.decoder_segment, f"up{name}")(x)
            x = getattr(self.decoder_segment, f"db{name}")(torch.cat((up_x, features.pop()), dim=1))
        return self.decoder_segment.fin_out(x)


def randomised(module: nn.Module, seed: int) -> nn.Module:
    """Random weights (He-scaled, so signals survive the depth) and random BatchNorm statistics, in eval mode."""
    generator = torch.Generator().manual_seed(seed)

    def uniform(shape: torch.Size, low: float, high: float) -> torch.Tensor:
        return low + (high - low) * torch.rand(shape, generator=generator)

    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, nn.Conv2d):
                fan_in = layer.weight[0].numel()
                layer.weight.copy_(torch.randn(layer.weight.shape, generator=generator) * (2 / fan_in) ** 0.5)
                layer.bias.copy_(uniform(layer.bias.shape, -0.1, 0.1))
            elif isinstance(layer, nn.BatchNorm2d):
                layer.weight.copy_(uniform(layer.weight.shape, 0.8, 1.2))
                layer.bias.copy_(uniform(layer.bias.shape, -0.1, 0.1))
                layer.running_mean.copy_(uniform(layer.running_mean.shape, -0.2, 0.2))
                layer.running_var.copy_(uniform(layer.running_var.shape, 0.5, 1.5))
    return module.eval()


def save_original(
    reconstructive: nn.Module, discriminative: nn.Module, folder: Path, category: str
) -> tuple[Path, Path]:
    """Save both networks as ``train_DRAEM.py`` does; the two paths."""
    run = Path(folder) / f"{RUN}_{category}_"
    paths = (Path(f"{run}.pckl"), Path(f"{run}_seg.pckl"))
    torch.save(reconstructive.state_dict(), paths[0])
    torch.save(discriminative.state_dict(), paths[1])
    return paths
