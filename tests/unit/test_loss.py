"""DraemPluginLoss: each term checked against an independent reference of the original formula."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from draem_plugin.loss import DraemPluginLoss, ssim_loss


def reference_ssim_map(
    a: torch.Tensor, b: torch.Tensor, window: int = 11, sigma: float = 1.5, dynamic_range: float = 1.0
) -> torch.Tensor:
    """SSIM map of the original DRAEM loss.py: Gaussian window, zero padding, C1=(0.01 L)^2, C2=(0.03 L)^2."""
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
    c1, c2 = (0.01 * dynamic_range) ** 2, (0.03 * dynamic_range) ** 2
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
    terms = DraemPluginLoss()(clean, reconstruction, mask, logits)
    assert terms["l2"].item() == pytest.approx(((reconstruction - clean) ** 2).mean().item(), rel=1e-6)


def test_ssim_term_is_one_minus_mean_ssim_of_the_original(batch: tuple[torch.Tensor, ...]) -> None:
    """Zero padding at the border, as the original (kornia's ssim_loss reflects, which gives a larger loss)."""
    clean, reconstruction, mask, logits = batch
    terms = DraemPluginLoss()(clean, reconstruction, mask, logits)
    assert terms["ssim"].item() == pytest.approx(1 - reference_ssim_map(reconstruction, clean).mean().item(), abs=1e-6)
    from kornia.losses import ssim_loss as kornia_ssim_loss

    reflected = 2 * kornia_ssim_loss(reconstruction, clean, window_size=11).item()
    assert abs(reflected - terms["ssim"].item()) > 1e-3  # the border makes a visible difference


@pytest.mark.parametrize(("low", "high", "dynamic_range"), [(-0.6, 1.0, 2.0), (0.0, 200.0, 255.0), (-0.4, 1.2, 1.0)])
def test_ssim_dynamic_range_comes_from_the_reconstruction(low: float, high: float, dynamic_range: float) -> None:
    """The original's val_range: 2 if the reconstruction has a value below -0.5, 255 if one above 128, else 1."""
    g = torch.Generator().manual_seed(1)
    clean = torch.rand(1, 3, 24, 24, generator=g)
    reconstruction = clean + 0.1 * torch.randn(1, 3, 24, 24, generator=g)
    reconstruction[0, 0, 0, 0], reconstruction[0, 1, 0, 0] = low, high
    expected = 1 - reference_ssim_map(reconstruction, clean, dynamic_range=dynamic_range).mean().item()
    assert ssim_loss(reconstruction, clean).item() == pytest.approx(expected, abs=1e-6)


def test_ssim_term_is_zero_for_a_perfect_reconstruction(batch: tuple[torch.Tensor, ...]) -> None:
    clean, _, mask, logits = batch
    assert DraemPluginLoss()(clean, clean, mask, logits)["ssim"].item() == pytest.approx(0.0, abs=1e-5)


def test_focal_term_matches_the_original_focal_loss(batch: tuple[torch.Tensor, ...]) -> None:
    clean, reconstruction, mask, logits = batch
    terms = DraemPluginLoss()(clean, reconstruction, mask, logits)
    assert terms["focal"].item() == pytest.approx(reference_focal(logits, mask).item(), rel=1e-6)
    # Without label smoothing it is kornia's focal loss (alpha=None) averaged over pixels ...
    from kornia.losses import focal_loss

    unsmoothed = DraemPluginLoss(focal_smoothing=0)(clean, reconstruction, mask, logits)["focal"].item()
    kornia_mean = focal_loss(logits, mask.squeeze(1).long(), alpha=None, gamma=2.0, reduction="mean").item()
    assert unsmoothed == pytest.approx(2 * kornia_mean, rel=1e-5)  # kornia's "mean" also divides by the 2 classes
    assert unsmoothed == pytest.approx(reference_focal(logits, mask, smooth=0.0).item(), rel=1e-5)
    # ... and with gamma=0 the mean cross-entropy.
    ce = F.cross_entropy(logits, mask.squeeze(1).long()).item()
    no_focus = DraemPluginLoss(focal_gamma=0, focal_smoothing=0)(clean, reconstruction, mask, logits)
    assert no_focus["focal"].item() == pytest.approx(ce, rel=1e-5)


@pytest.mark.parametrize("smoothing", [1e-5, 0.0])
def test_focal_normal_weight_scales_only_the_normal_pixels(batch: tuple[torch.Tensor, ...], smoothing: float) -> None:
    clean, reconstruction, mask, logits = batch
    normal_only = logits.masked_fill(mask.bool().expand_as(logits), 0.0)  # anomalous pixels all at p_t = 0.5

    def focal(weight: float, scores: torch.Tensor = logits) -> float:
        loss = DraemPluginLoss(focal_smoothing=smoothing, focal_normal_weight=weight)
        return loss(clean, reconstruction, mask, scores)["focal"].item()

    anomalous_part = focal(0.0)
    normal_part = focal(1.0) - anomalous_part
    assert normal_part > 0.1 * anomalous_part  # both parts matter in this batch
    assert focal(0.3) == pytest.approx(anomalous_part + 0.3 * normal_part, rel=1e-5)
    # The anomalous part is the original's loss over the anomalous pixels, divided by all pixels.
    share = mask.mean().item()
    anomalous_logits = logits.permute(0, 2, 3, 1)[mask[:, 0].bool()].T[None, :, :, None]  # 1 x 2 x N x 1
    on_anomalous = reference_focal(anomalous_logits, torch.ones_like(anomalous_logits[:, :1]), smooth=smoothing)
    assert anomalous_part == pytest.approx(share * on_anomalous.item(), rel=1e-5)
    assert focal(0.0, normal_only) == pytest.approx(share * 0.25 * math.log(2), rel=1e-3)


@pytest.mark.parametrize("weight", [-0.1, 1.5])
def test_focal_normal_weight_outside_the_unit_interval_is_refused(weight: float) -> None:
    with pytest.raises(ValueError, match=rf"focal_normal_weight must be in \[0, 1\], got {weight}\. Use 1"):
        DraemPluginLoss(focal_normal_weight=weight)


def test_total_is_the_unweighted_sum_and_has_gradients(batch: tuple[torch.Tensor, ...]) -> None:
    clean, reconstruction, mask, logits = batch
    reconstruction = reconstruction.clone().requires_grad_(True)
    logits = logits.clone().requires_grad_(True)
    terms = DraemPluginLoss()(clean, reconstruction, mask, logits)
    total = terms.pop("loss")
    assert sorted(terms) == ["focal", "l2", "ssim"]
    assert total.item() == pytest.approx(sum(t.item() for t in terms.values()), rel=1e-6)
    total.backward()
    assert reconstruction.grad is not None and logits.grad is not None
    assert math.isfinite(reconstruction.grad.abs().sum().item())


def test_terms_are_float32_under_bf16_inputs(batch: tuple[torch.Tensor, ...]) -> None:
    clean, reconstruction, mask, logits = batch
    terms = DraemPluginLoss()(clean.bfloat16(), reconstruction.bfloat16(), mask, logits.bfloat16())
    assert all(t.dtype == torch.float32 for t in terms.values())
