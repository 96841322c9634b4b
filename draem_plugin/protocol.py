"""The original evaluation protocol of DRÆM (``test_DRAEM.py``), next to anomalib's metrics.

:class:`OriginalProtocol` is a Lightning callback (``DraemPlugin(original_protocol=True)`` adds it) that sees each
test batch before anomalib's post-processor normalises it, and computes what the original test script reports:

* the raw image scores (max of the 21x21 mean-filtered softmax map) and the raw softmax maps;
* ground-truth masks read from their files as the original reads them: ``cv2.imread`` in grey, resized to the map's
  size with ``cv2.resize`` (bilinear), divided by 255 and cast to ``uint8``, so that only pixels equal to 1 count as
  anomalous (a mask pixel that the resize blended with a normal neighbour does not);
* image AUROC and AP (``sklearn``'s average precision, which ``torchmetrics`` computes the same way), and pixel AUROC
  and AP pooled over every pixel of every test image of the category.

They are logged as ``original_image_AUROC``, ``original_image_AP``, ``original_pixel_AUROC`` and ``original_pixel_AP``
beside anomalib's ``image_AUROC`` ... (which see post-processed scores and nearest-resized masks).

Example:
    >>> from draem_plugin import DraemPlugin
    >>> model = DraemPlugin(original_protocol=True)  # anomalib test reports the original_* metrics too
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from torchmetrics.functional.classification import binary_auroc, binary_average_precision

__all__ = ["PAPER_RESULTS", "OriginalProtocol", "original_mask"]

#: The paper's MVTec AD results per category (image AUROC, pixel AUROC, pixel AP), in percent (Tables 1 and 2).
PAPER_RESULTS: dict[str, tuple[float, float, float]] = {
    "carpet": (97.0, 95.5, 53.5),
    "grid": (99.9, 99.7, 65.7),
    "leather": (100.0, 98.6, 75.3),
    "tile": (99.6, 99.2, 92.3),
    "wood": (99.1, 96.4, 77.7),
    "bottle": (99.2, 99.1, 86.5),
    "cable": (91.8, 94.7, 52.4),
    "capsule": (98.5, 94.3, 49.4),
    "hazelnut": (100.0, 99.7, 92.9),
    "metal_nut": (98.7, 99.5, 96.3),
    "pill": (98.9, 97.6, 48.5),
    "screw": (93.9, 97.6, 58.2),
    "toothbrush": (100.0, 98.1, 44.7),
    "transistor": (93.1, 90.9, 50.7),
    "zipper": (100.0, 98.8, 81.5),
}


def original_mask(path: str | None, size: tuple[int, int]) -> np.ndarray:
    """The ground truth as ``test_DRAEM.py`` sees it: ``size`` (H, W) uint8 of 0 / 1, all 0 without a mask file."""
    if not path:
        return np.zeros(size, dtype=np.uint8)
    mask = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if mask is None:
        msg = f"cannot read the mask {path} (cv2.imread returned nothing); check the file."
        raise ValueError(msg)
    resized = cv2.resize(mask, dsize=(size[1], size[0])) / 255.0
    return resized.astype(np.uint8)


class OriginalProtocol(Callback):
    """Collect raw scores, raw maps and originally-resized masks of a test run; log the original metrics at its end.

    It must come before anomalib's post-processor in the callback list (``DraemPlugin.configure_callbacks`` puts it
    there). The pixel metrics need the masks' files (``batch.mask_path``); without them only image metrics are logged.
    """

    def __init__(self) -> None:
        self._scores: list[torch.Tensor] = []
        self._labels: list[torch.Tensor] = []
        self._maps: list[torch.Tensor] = []
        self._masks: list[torch.Tensor] = []

    def on_test_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Start empty."""
        self._scores, self._labels, self._maps, self._masks = [], [], [], []

    def on_test_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        """Keep this batch's raw outputs (on the CPU) and its masks as the original reads them."""
        self._scores.append(outputs.pred_score.detach().float().cpu().flatten())
        self._labels.append(outputs.gt_label.detach().cpu().flatten().long())
        paths = getattr(outputs, "mask_path", None)
        if paths is None or outputs.anomaly_map is None:
            return
        maps = outputs.anomaly_map.detach().float().cpu().reshape(len(paths), *outputs.anomaly_map.shape[-2:])
        self._maps.append(maps)
        masks = [
            original_mask(path if label else None, tuple(maps.shape[-2:]))
            for path, label in zip(paths, self._labels[-1].tolist(), strict=True)
        ]
        self._masks.append(torch.from_numpy(np.stack(masks)))

    def on_test_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Log image AUROC / AP and, with masks, pixel AUROC / AP pooled over all pixels."""
        if not self._scores:
            return
        scores, labels = torch.cat(self._scores), torch.cat(self._labels)
        metrics = {}
        if labels.min() != labels.max():
            metrics["original_image_AUROC"] = binary_auroc(scores, labels)
            metrics["original_image_AP"] = binary_average_precision(scores, labels)
        if self._maps:
            maps, masks = torch.cat(self._maps).flatten(), torch.cat(self._masks).flatten().long()
            if masks.min() != masks.max():
                metrics["original_pixel_AUROC"] = binary_auroc(maps, masks)
                metrics["original_pixel_AP"] = binary_average_precision(maps, masks)
        for name, value in metrics.items():
            pl_module.log(name, value.item(), sync_dist=False)
