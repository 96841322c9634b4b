"""From the discriminative network's logits to anomalib's outputs: the anomaly map and the image score.

The original evaluation (``test_DRAEM.py``) takes the softmax probability of the anomalous class as the anomaly map
and the maximum of its 21x21 mean-filtered version as the image score; the mean filter makes the score the strength
of the strongest anomalous *region* rather than of one pixel.

Example:
    >>> import torch
    >>> logits = torch.zeros(2, 2, 32, 32)
    >>> anomaly_map = anomaly_map_from_logits(logits)
    >>> anomaly_map.shape, image_score(anomaly_map, 21).tolist()
    (torch.Size([2, 32, 32]), [0.5, 0.5])
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

__all__ = ["anomaly_map_from_logits", "image_score", "mean_filtered_max"]


def anomaly_map_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """``B x H x W`` softmax probability of the anomalous class (channel 1) of 2-class ``logits``, at least float32."""
    return torch.softmax(logits.to(torch.promote_types(logits.dtype, torch.float32)), dim=1)[:, 1]


def mean_filtered_max(anomaly_map: torch.Tensor, filter_size: int) -> torch.Tensor:
    """Max of the ``filter_size`` x ``filter_size`` mean-filtered ``B x H x W`` anomaly map, one value per image.

    Zero padding counts toward the mean at the borders (``avg_pool2d`` with ``count_include_pad``), as in the original
    ``test_DRAEM.py``.

    Example:
        >>> mean_filtered_max(torch.ones(2, 8, 8), 3)
        tensor([1., 1.])
    """
    filtered = F.avg_pool2d(anomaly_map.unsqueeze(1), filter_size, stride=1, padding=filter_size // 2)
    return filtered.flatten(1).amax(dim=1)


def image_score(anomaly_map: torch.Tensor, filter_size: int) -> torch.Tensor:
    """The image score: :func:`mean_filtered_max`, with the filter shrunk to the largest odd size that fits the map."""
    smallest = min(anomaly_map.shape[-2:])
    return mean_filtered_max(anomaly_map, min(filter_size, smallest if smallest % 2 else smallest - 1))
