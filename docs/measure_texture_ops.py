"""How strong the texture-op fidelity fixes are on real textures: mean absolute change per variant.

Usage: python docs/measure_texture_ops.py ../shared/data/textures/dtd_lowres
"""

import sys
from pathlib import Path

import torch

from draem_plugin.augmentation import TextureBank
from draem_plugin.augmentation.functional import adjust_brightness, autocontrast

bank = TextureBank(Path(sys.argv[1]), size=128, max_images=500, seed=0)
x = bank.images.float() / 255
n = len(x)
g = torch.Generator().manual_seed(0)
cutoff = torch.randint(0, 21, (n,), generator=g)
plain = (autocontrast(x) - x).abs().mean().item()
cut = (autocontrast(x, cutoff) - x).abs().mean().item()
print(f"autocontrast mean |change|: no cutoff {plain:.4f}, cutoff 0-20 % {cut:.4f}, ratio {cut / plain:.2f}")
space = torch.randint(0, 6, (n,), generator=g)
mul = 0.8 + 0.4 * torch.rand(n, generator=g)
add = (torch.rand(n, generator=g) - 0.5) * 60 / 255
order = torch.rand(n, generator=g) < 0.5
ours = adjust_brightness(x, space, mul, add, order)
bgr = adjust_brightness(x.flip(1), space, mul, add, order).flip(1)  # imgaug on cv2's BGR, taken as RGB
luma = adjust_brightness(x, torch.zeros_like(space), mul, add, torch.zeros_like(order))  # YCbCr, multiply then add
print(
    f"brightness mean |change|: ours {(ours - x).abs().mean():.4f}, BGR-as-RGB {(bgr - x).abs().mean():.4f}, "
    f"YCbCr only {(luma - x).abs().mean():.4f}; ours vs BGR-as-RGB mean |difference| {(ours - bgr).abs().mean():.4f}"
)
