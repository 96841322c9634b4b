"""Training loss of DRÆM: L2 + SSIM on the reconstruction, focal loss on the segmentation, as the original computes it.

All three terms have weight 1, as in the original ``train_DRAEM.py``:

* ``l2``: mean squared error between the reconstruction and the clean image (``torch.nn.functional.mse_loss``).
* ``ssim``: ``1 - mean SSIM`` of the reconstruction against the clean image with the original's 11x11 Gaussian
  window (sigma 1.5), built with kornia's filters. Like the original ``loss.py`` it pads with zeros (kornia's
  ``ssim_loss`` reflects, which makes the term 2-8 % larger) and takes the dynamic range ``L`` from the
  reconstruction: 2 when it holds a value below -0.5 (which an untrained network's output does), 255 when it holds
  one above 128, else 1, with ``C1 = (0.01 L)^2`` and ``C2 = (0.03 L)^2``.
* ``focal``: the original focal loss on the softmax of the logits (gamma 2, no class weighting, label smoothing
  1e-5: ``p_t -> (1 - 2s) p_t + 2s``), averaged over pixels. kornia's ``focal_loss`` has no label smoothing (which
  also bounds the loss of confidently wrong pixels), so it is used only for ``smoothing=0``, where the two agree.
  ``focal_normal_weight`` scales the term on normal pixels (original: 1; 0 is what anomalib 2.7's ``Draem`` trains
  with under kornia 0.9, whose ``FocalLoss(alpha=1)`` gives normal pixels weight 0; docs/benchmarks.md).

Example:
    >>> import torch
    >>> image = torch.rand(2, 3, 32, 32)
    >>> losses = DraemPluginLoss()(image, image, torch.zeros(2, 1, 32, 32), torch.zeros(2, 2, 32, 32))
    >>> sorted(losses)
    ['focal', 'l2', 'loss', 'ssim']
"""

from __future__ import annotations

import torch
from kornia.filters import filter2d, get_gaussian_kernel2d
from kornia.losses import focal_loss
from torch import nn
from torch.nn import functional as F

__all__ = ["DraemPluginLoss", "ssim_loss"]


def ssim_loss(reconstruction: torch.Tensor, target: torch.Tensor, window_size: int = 11) -> torch.Tensor:
    """``1 - mean SSIM`` of the original DRÆM ``loss.py``: zero padding, dynamic range taken from ``reconstruction``.

    Example:
        >>> x = torch.rand(1, 3, 16, 16)
        >>> float(ssim_loss(x, x)) < 1e-6
        True
    """
    kernel = get_gaussian_kernel2d((window_size, window_size), (1.5, 1.5), device=target.device, dtype=target.dtype)

    def blur(image: torch.Tensor) -> torch.Tensor:
        return filter2d(image, kernel, border_type="constant")

    low = torch.where(reconstruction.amin() < -0.5, -1.0, 0.0)
    high = torch.where(reconstruction.amax() > 128, 255.0, 1.0)
    c1, c2 = (0.01 * (high - low)) ** 2, (0.03 * (high - low)) ** 2
    mu_x, mu_y = blur(reconstruction), blur(target)
    var_x = blur(reconstruction * reconstruction) - mu_x**2
    var_y = blur(target * target) - mu_y**2
    covariance = blur(reconstruction * target) - mu_x * mu_y
    ssim = ((2 * mu_x * mu_y + c1) * (2 * covariance + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return 1.0 - ssim.mean()


class DraemPluginLoss(nn.Module):
    """``l2 + ssim + focal`` of the original DRÆM training.

    Args:
        ssim_window: side of the Gaussian SSIM window (original: 11).
        focal_gamma: focusing parameter of the focal loss (original: 2).
        focal_smoothing: label smoothing of the focal loss (original: 1e-5).
        focal_normal_weight: weight of the focal loss on normal pixels, in ``[0, 1]``; anomalous pixels keep weight 1
            (original: 1).

    Raises:
        ValueError: if ``focal_normal_weight`` is outside ``[0, 1]``.
    """

    def __init__(
        self,
        ssim_window: int = 11,
        focal_gamma: float = 2.0,
        focal_smoothing: float = 1e-5,
        focal_normal_weight: float = 1.0,
    ) -> None:
        super().__init__()
        if not 0.0 <= focal_normal_weight <= 1.0:
            msg = (
                f"focal_normal_weight must be in [0, 1], got {focal_normal_weight}. "
                "Use 1 for the original loss, or a smaller weight to train less on normal pixels."
            )
            raise ValueError(msg)
        self.ssim_window = ssim_window
        self.focal_gamma = focal_gamma
        self.focal_smoothing = focal_smoothing
        self.focal_normal_weight = focal_normal_weight

    def focal(self, logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Pixel-averaged focal loss of 2-class ``logits`` (``B x 2 x H x W``) against ``mask`` (``B x 1 x H x W``)."""
        target = mask.long()
        if self.focal_smoothing == 0:
            # kornia's unreduced loss is per class (zero off the target class); the class sum is the pixel's loss
            per_pixel = focal_loss(logits, target.squeeze(1), alpha=None, gamma=self.focal_gamma).sum(1, keepdim=True)
        else:
            p_t = torch.softmax(logits, dim=1).gather(1, target)
            p_t = (1 - 2 * self.focal_smoothing) * p_t + 2 * self.focal_smoothing
            per_pixel = -((1 - p_t) ** self.focal_gamma * p_t.log())
        if self.focal_normal_weight != 1.0:
            per_pixel = per_pixel * torch.where(target.bool(), 1.0, self.focal_normal_weight)
        return per_pixel.mean()

    def forward(
        self,
        clean: torch.Tensor,
        reconstruction: torch.Tensor,
        mask: torch.Tensor,
        logits: torch.Tensor,
    ) -> dict[str, torch.Tensor]:
        """The total under ``"loss"`` and the three terms ``"l2"``, ``"ssim"``, ``"focal"``, in float32.

        Args:
            clean: ``B x 3 x H x W`` anomaly-free images (the reconstruction target).
            reconstruction: ``B x 3 x H x W`` output of the reconstructive network.
            mask: ``B x 1 x H x W`` synthetic anomaly masks in ``{0, 1}``.
            logits: ``B x 2 x H x W`` output of the discriminative network.

        Returns:
            The loss terms, computed in float32 with autocast off (so bf16-mixed training gets full-precision losses).
        """
        with torch.autocast(clean.device.type, enabled=False):
            reconstruction, clean, logits = reconstruction.float(), clean.float(), logits.float()
            terms = {
                "l2": F.mse_loss(reconstruction, clean),
                "ssim": ssim_loss(reconstruction, clean, self.ssim_window),
                "focal": self.focal(logits, mask),
            }
        return {"loss": terms["l2"] + terms["ssim"] + terms["focal"], **terms}
