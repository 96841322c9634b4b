"""DraemPluginLoss: each term checked against an independent reference of the original formula."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F  # noqa: N812

from draem_plugin.loss import DraemPluginLoss


def reference_ssim_map(a: torch.Tensor, b: torch.Tensor, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """SSIM map of the original DRAEM loss.py: Gaussian window, zero padding, C1=0.01^2, C2=0.03^2."""
    x = torch.arange(window, dtype=torch.float64) - window // 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    kernel = (g[:, None] * g[None, :]).expand(a.shape[1], 1, window, window).contiguous()

    def filt(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, kernel, padding=window // 2, groups=a.shape[1])

    a, b = a.double(), b.double()
    mu_a, mu_b = filt(a), filt(b)
    saa = filt(a * a) - mu_a**2
    sbb = filt(b * b) - mu_b**2
    sab = filt(a * b) - mu_a * mu_b
    c1, c2 = 0.01**2, 0.03**2
    return ((2 * mu_a * mu_b + c1) * (2 * sab + c2)) / ((mu_a**2 + mu_b**2 + c1) * (saa + sbb + c2))


def reference_focal(logits: torch.Tensor, mask: torch.Tensor, gamma: float = 2.0, smooth: float = 1e-5) -> torch.Tensor:
    """Original FocalLoss(apply_nonlin=softmax, alpha=None, gamma=2, smooth=1e-5), averaged over pixels."""
    p = torch.softmax(logits.double(), dim=1).permute(0, 2, 3, 1).reshape(-1, 2)
    one_hot = F.one_hot(mask.long().flatten(), 2).double().clamp(smooth, 1 - smooth)
    pt = (one_hot * p).sum(1) + smooth
    return (-((1 - pt) ** gamma) * pt.log()).mean()


@pytest.fixture
def batch() -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(0)
    clean = torch.rand(2, 3, 48, 48, generator=g)
    reconstruction = (clean + 0.2 * torch.randn(2, 3, 48, 48, generator=g)).clamp(0, 1)
    mask = (torch.rand(2, 1, 48, 48, generator=g) > 0.7).float()
    logits = 2 * torch.randn(2, 2, 48, 48, generator=g)
    return clean, reconstruction, mask, logits


def test_l2_term_is_the_mean_squared_error(batch: tuple[torch.Tensor, ...]) -> None:
    clean, reconstruction, mask, logits = batch
    terms = DraemPluginLoss().terms(clean, reconstruction, mask, logits)
    assert terms["l2"].item() == pytest.approx(((reconstruction - clean) ** 2).mean().item(), rel=1e-6)


def test_ssim_term_is_one_minus_mean_ssim_of_the_original(batch: tuple[torch.Tensor, ...]) -> None:
    clean, reconstruction, mask, logits = batch
    terms = DraemPluginLoss().terms(clean, reconstruction, mask, logits)
    ref_map = reference_ssim_map(reconstruction, clean)
    # Away from the 5-pixel border (where kornia reflects and the original zero-pads) the maps agree exactly,
    # so the whole-image losses differ by at most the border share of the mean.
    ref_loss = 1 - ref_map.mean().item()
    border_share = 1 - (38 * 38) / (48 * 48)
    assert terms["ssim"].item() == pytest.approx(ref_loss, abs=2 * border_share)
    from kornia.metrics import ssim  # noqa: PLC0415

    kornia_map = ssim(reconstruction, clean, 11)
    torch.testing.assert_close(kornia_map[..., 5:-5, 5:-5].double(), ref_map[..., 5:-5, 5:-5], atol=1e-5, rtol=0)
    assert terms["ssim"].item() == pytest.approx(1 - kornia_map.mean().item(), abs=1e-5)


def test_ssim_term_is_zero_for_a_perfect_reconstruction(batch: tuple[torch.Tensor, ...]) -> None:
    clean, _, mask, logits = batch
    assert DraemPluginLoss().terms(clean, clean, mask, logits)["ssim"].item() == pytest.approx(0.0, abs=1e-5)


def test_focal_term_matches_the_original_focal_loss(batch: tuple[torch.Tensor, ...]) -> None:
    clean, reconstruction, mask, logits = batch
    terms = DraemPluginLoss().terms(clean, reconstruction, mask, logits)
    assert terms["focal"].item() == pytest.approx(reference_focal(logits, mask).item(), rel=1e-6)
    # Without label smoothing it is kornia's focal loss (alpha=None) averaged over pixels ...
    from kornia.losses import focal_loss  # noqa: PLC0415

    unsmoothed = DraemPluginLoss(focal_smoothing=0).terms(clean, reconstruction, mask, logits)["focal"].item()
    kornia_mean = focal_loss(logits, mask.squeeze(1).long(), alpha=None, gamma=2.0, reduction="mean").item()
    assert unsmoothed == pytest.approx(2 * kornia_mean, rel=1e-5)  # kornia's "mean" also divides by the 2 classes
    assert unsmoothed == pytest.approx(reference_focal(logits, mask, smooth=0.0).item(), rel=1e-5)
    # ... and with gamma=0 the mean cross-entropy.
    ce = F.cross_entropy(logits, mask.squeeze(1).long()).item()
    no_focus = DraemPluginLoss(focal_gamma=0, focal_smoothing=0).terms(clean, reconstruction, mask, logits)
    assert no_focus["focal"].item() == pytest.approx(ce, rel=1e-5)


def test_total_is_the_unweighted_sum_and_has_gradients(batch: tuple[torch.Tensor, ...]) -> None:
    clean, reconstruction, mask, logits = batch
    reconstruction = reconstruction.clone().requires_grad_(True)
    logits = logits.clone().requires_grad_(True)
    loss_fn = DraemPluginLoss()
    total = loss_fn(clean, reconstruction, mask, logits)
    terms = loss_fn.terms(clean, reconstruction, mask, logits)
    assert total.item() == pytest.approx(sum(t.item() for t in terms.values()), rel=1e-6)
    total.backward()
    assert reconstruction.grad is not None and logits.grad is not None
    assert math.isfinite(reconstruction.grad.abs().sum().item())


def test_terms_are_float32_under_bf16_inputs(batch: tuple[torch.Tensor, ...]) -> None:
    clean, reconstruction, mask, logits = batch
    terms = DraemPluginLoss().terms(clean.bfloat16(), reconstruction.bfloat16(), mask, logits.bfloat16())
    assert all(t.dtype == torch.float32 for t in terms.values())
