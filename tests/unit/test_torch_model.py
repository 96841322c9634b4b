"""DraemPluginModel: architecture, initialisation, outputs and the image score."""

from __future__ import annotations

import pytest
import torch
from anomalib.data import InferenceBatch
from torch import nn
from torch.nn import functional as F

from draem_plugin.torch_model import (
    NORM_GROUPS,
    DiscriminativeSubNetwork,
    DraemPluginModel,
    ReconstructiveSubNetwork,
    norm_layer,
)


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_default_parameter_count_matches_the_original() -> None:
    model = DraemPluginModel()
    # Original: reconstructive 69.0 M + discriminative 28.4 M = 97.4 M.
    assert n_params(model.reconstructive_subnetwork) == 69_048_579
    assert n_params(model.discriminative_subnetwork) == 28_374_146
    assert round(n_params(model) / 1e6, 1) == 97.4


def test_widths_and_poolings_follow_the_original() -> None:
    rec = ReconstructiveSubNetwork(base_width=4)
    assert [block[3].out_channels for block in rec.encoder] == [4, 8, 16, 32, 32]
    disc = DiscriminativeSubNetwork(base_width=4)
    assert [block[3].out_channels for block in disc.encoder] == [4, 8, 16, 32, 32, 32]
    assert disc.encoder[0][0].in_channels == 6
    assert disc.head.out_channels == 2
    # Skip connections: the first fuse block sees bottleneck-up (8b) + encoder block 5 (8b).
    assert disc.fuse[0][0].in_channels == 64
    assert disc.fuse[-1][0].in_channels == 8  # up4 (b) + encoder block 1 (b)


def test_initialisation_is_normal_0_02_and_batchnorm_1_0_02() -> None:
    torch.manual_seed(0)
    model = DraemPluginModel(reconstructive_width=32, discriminative_width=32)
    conv = torch.cat([m.weight.flatten() for m in model.modules() if isinstance(m, nn.Conv2d)])
    bn_w = torch.cat([m.weight for m in model.modules() if isinstance(m, nn.BatchNorm2d)])
    bn_b = torch.cat([m.bias for m in model.modules() if isinstance(m, nn.BatchNorm2d)])
    assert abs(conv.mean().item()) < 1e-3
    assert conv.std().item() == pytest.approx(0.02, rel=0.02)
    assert bn_w.mean().item() == pytest.approx(1.0, abs=2e-3)
    assert bn_w.std().item() == pytest.approx(0.02, rel=0.1)
    assert torch.all(bn_b == 0)


def test_training_forward_shapes_and_input_order() -> None:
    model = DraemPluginModel(reconstructive_width=4, discriminative_width=4)
    image = torch.rand(2, 3, 64, 96)
    reconstruction, logits = model(image)
    assert reconstruction.shape == (2, 3, 64, 96)
    assert logits.shape == (2, 2, 64, 96)
    # The discriminative network sees [reconstruction, input] in that order (original code).
    seen = {}
    model.discriminative_subnetwork.register_forward_pre_hook(lambda _m, args: seen.setdefault("x", args[0]))
    reconstruction, _ = model(image)
    torch.testing.assert_close(seen["x"][:, 3:], image)
    torch.testing.assert_close(seen["x"][:, :3], reconstruction)


def test_eval_forward_returns_inference_batch_with_filtered_max_score() -> None:
    torch.manual_seed(0)
    model = DraemPluginModel(reconstructive_width=4, discriminative_width=4, score_filter_size=5).eval()
    image = torch.rand(3, 3, 64, 64)
    with torch.no_grad():
        out = model(image)
    assert isinstance(out, InferenceBatch)
    assert out.anomaly_map.shape == (3, 64, 64)
    assert out.pred_score.shape == (3,)
    assert torch.all((out.anomaly_map >= 0) & (out.anomaly_map <= 1))
    expected = F.avg_pool2d(out.anomaly_map[:, None], 5, stride=1, padding=2).amax(dim=(1, 2, 3))
    torch.testing.assert_close(out.pred_score, expected)
    # The filtered max is never above the plain max and differs from it for a peaky map.
    assert torch.all(out.pred_score <= out.anomaly_map.amax(dim=(1, 2)) + 1e-6)


@pytest.mark.parametrize("size", [(64, 48), (100, 64), (31, 31)])
def test_input_size_not_multiple_of_32_is_rejected_with_the_fix(size: tuple[int, int]) -> None:
    model = DraemPluginModel(reconstructive_width=4, discriminative_width=4)
    with pytest.raises(ValueError, match=rf"multiples of 32, got {size[0]}x{size[1]}.*image_size"):
        model(torch.rand(1, 3, *size))


def test_wrong_channel_count_is_rejected() -> None:
    with pytest.raises(ValueError, match="B x 3 x H x W"):
        DraemPluginModel(reconstructive_width=4, discriminative_width=4)(torch.rand(1, 1, 64, 64))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"reconstructive_width": 0}, "reconstructive_width"),
        ({"discriminative_width": -3}, "discriminative_width"),
        ({"score_filter_size": 20}, "odd"),
        ({"score_filter_size": 0}, "score_filter_size"),
        ({"normalization": "layer"}, "normalization must be 'batch'.*'group'"),
        ({"seed": 2**32}, r"seed must be None or an int in \[0, 4294967295\]"),
    ],
)
def test_bad_parameters_are_rejected_by_name(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        DraemPluginModel(**kwargs)


def test_group_normalization_replaces_every_batchnorm_and_keeps_the_parameter_count() -> None:
    batch = DraemPluginModel(reconstructive_width=4, discriminative_width=8)
    group = DraemPluginModel(reconstructive_width=4, discriminative_width=8, normalization="group")
    batch_norms = [m for m in batch.modules() if isinstance(m, nn.BatchNorm2d)]
    group_norms = [m for m in group.modules() if isinstance(m, nn.GroupNorm)]
    assert not any(isinstance(m, nn.BatchNorm2d) for m in group.modules())
    assert [m.num_features for m in batch_norms] == [m.num_channels for m in group_norms]
    assert n_params(group) == n_params(batch)
    assert not any("running_" in key for key in group.state_dict())
    # Width-4 layers cannot hold NORM_GROUPS groups; they get the largest common divisor.
    assert {m.num_channels: m.num_groups for m in group_norms}[4] == 4
    assert norm_layer(64, "group").num_groups == NORM_GROUPS
    # The original's initialisation applies to GroupNorm as to BatchNorm: weights N(1, 0.02), biases 0.
    weights = torch.cat([m.weight for m in group_norms])
    assert weights.std().item() == pytest.approx(0.02, rel=0.25)
    assert torch.all(torch.cat([m.bias for m in group_norms]) == 0)


def test_group_normalization_gives_each_image_the_same_output_whatever_the_batch() -> None:
    torch.manual_seed(0)
    images = torch.rand(4, 3, 64, 64)
    group = DraemPluginModel(reconstructive_width=4, discriminative_width=4, normalization="group")
    alone, _ = group(images[:1])
    together, _ = group(images)
    torch.testing.assert_close(alone, together[:1], rtol=1e-4, atol=1e-5)
    batch = DraemPluginModel(reconstructive_width=4, discriminative_width=4)  # training-mode BatchNorm mixes the batch
    alone, _ = batch(images[:1].repeat(2, 1, 1, 1))
    together, _ = batch(images)
    assert (alone[:1] - together[:1]).abs().max() > 1e-3
