"""Training loss of DRÆM: L2 + SSIM on the reconstruction, focal loss on the segmentation.

All three terms have weight 1, as in the original ``train_DRAEM.py``:

* ``l2``: mean squared error between the reconstruction and the clean image (``torch.nn.functional.mse_loss``).
* ``ssim``: ``1 - mean SSIM`` with an 11x11 Gaussian window (sigma 1.5), data range 1. kornia's ``ssim_loss``
  returns ``(1 - SSIM) / 2``, so it is doubled. kornia pads reflectively where the original zero-pads; the two
  agree away from the 5-pixel border.
* ``focal``: the original focal loss on the softmax of the logits (gamma 2, no class weighting, label smoothing
  1e-5: ``p_t -> (1 - 2s) p_t + 2s``), averaged over pixels. kornia's ``focal_loss`` has no label smoothing (which
  also bounds the loss of confidently wrong pixels), so it is used only for ``smoothing=0``, where the two agree.

Example:
    >>> import torch
    >>> from draem_plugin.loss import DraemPluginLoss
    >>> loss = DraemPluginLoss()
    >>> image = torch.rand(2, 3, 32, 32)
    >>> terms = loss.terms(image, image, torch.zeros(2, 1, 32, 32), torch.zeros(2, 2, 32, 32))
    >>> sorted(terms)
    ['focal', 'l2', 'ssim']
"""

from __future__ import annotations

import torch
from kornia.losses import focal_loss, ssim_loss
from torch import nn
from torch.nn import functional as F  # noqa: N812

__all__ = ["DraemPluginLoss"]


class DraemPluginLoss(nn.Module):
    """``l2 + ssim + focal`` of the original DRÆM training (each term weighted by 1 by default).

    Args:
        ssim_window: side of the Gaussian SSIM window (original: 11).
        focal_gamma: focusing parameter of the focal loss (original: 2).
        focal_smoothing: label smoothing of the focal loss (original: 1e-5).
    """

    def __init__(self, ssim_window: int = 11, focal_gamma: float = 2.0, focal_smoothing: float = 1e-5) -> None:
        super().__init__()
        self.ssim_window = ssim_window
        self.focal_gamma = focal_gamma
        self.focal_smoothing = focal_smoothing

    def focal(self, logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Pixel-averaged focal loss of 2-class ``logits`` (``B x 2 x H x W``) against ``mask`` (``B x 1 x H x W``)."""
        target = mask.long()
        if self.focal_smoothing == 0:
            total = focal_loss(logits, target.squeeze(1), alpha=None, gamma=self.focal_gamma, reduction="sum")
            return total / target.numel()
        p_t = torch.softmax(logits, dim=1).gather(1, target)
        p_t = (1 - 2 * self.focal_smoothing) * p_t + 2 * self.focal_smoothing
        return -((1 - p_t) ** self.focal_gamma * p_t.log()).mean()

    def terms(
        self,
        clean: torch.Tensor,
        reconstruction: torch.Tensor,
        mask: torch.Tensor,
        logits: torch.Tensor,
    ) -> dict[str, torch.Tensor]:
        """The three loss terms for ``clean`` / ``reconstruction`` (``B x 3 x H x W``), ``mask`` (``B x 1 x H x W``)
        and ``logits`` (``B x 2 x H x W``), computed in float32 (safe under bf16 autocast)."""
        reconstruction, clean, logits = reconstruction.float(), clean.float(), logits.float()
        return {
            "l2": F.mse_loss(reconstruction, clean),
            "ssim": 2.0 * ssim_loss(reconstruction, clean, window_size=self.ssim_window, max_val=1.0),
            "focal": self.focal(logits, mask),
        }

    def forward(
        self,
        clean: torch.Tensor,
        reconstruction: torch.Tensor,
        mask: torch.Tensor,
        logits: torch.Tensor,
    ) -> torch.Tensor:
        """Total loss: the sum of :meth:`terms`."""
        return torch.stack(list(self.terms(clean, reconstruction, mask, logits).values())).sum()
