"""The anomaly map and the image score of the original evaluation."""

from __future__ import annotations

import pytest
import torch

from draem_plugin.anomaly_map import anomaly_map_from_logits, image_score, mean_filtered_max


def test_anomaly_map_is_the_softmax_probability_of_the_anomalous_class() -> None:
    logits = torch.tensor([[0.0, 2.0], [1.0, -1.0]]).view(2, 2, 1, 1).bfloat16()
    anomaly_map = anomaly_map_from_logits(logits)
    assert anomaly_map.dtype == torch.float32 and anomaly_map.shape == (2, 1, 1)
    expected = torch.sigmoid(torch.tensor([2.0, -2.0]))  # softmax of two classes = sigmoid of the difference
    torch.testing.assert_close(anomaly_map.flatten(), expected, atol=1e-2, rtol=0)


def test_mean_filtered_max_on_known_maps() -> None:
    peak = torch.zeros(1, 41, 41)
    peak[0, 20, 20] = 1.0
    assert mean_filtered_max(peak, 21).item() == pytest.approx(1 / 441)
    block = torch.zeros(1, 41, 41)
    block[0, 10:31, 10:31] = 1.0
    assert mean_filtered_max(block, 21).item() == pytest.approx(1.0)
    # Zero padding counts at the border, as in the original avg_pool2d(..., padding=10): an 11x11 block in the
    # corner scores 121/441 (it would score 1.0 if the padding were excluded from the mean).
    corner = torch.zeros(1, 41, 41)
    corner[0, :11, :11] = 1.0
    assert mean_filtered_max(corner, 21).item() == pytest.approx(121 / 441)


def test_image_score_shrinks_the_filter_to_the_map() -> None:
    """A 21x21 filter on a 16x16 map becomes 15x15 (the largest odd size that fits)."""
    anomaly_map = torch.zeros(1, 16, 16)
    anomaly_map[0, :15, :15] = 1.0
    assert image_score(anomaly_map, 21).item() == pytest.approx(mean_filtered_max(anomaly_map, 15).item())
    assert image_score(anomaly_map, 21).item() == pytest.approx(1.0)
    assert image_score(anomaly_map, 3).item() == pytest.approx(1.0)
