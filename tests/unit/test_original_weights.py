"""The released weights: an independent reference of the original networks (``tests/original_reference.py``), with
random weights and BatchNorm statistics, saved as the original saves them, imported, computes the same on BGR input.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from original_reference import OriginalDiscriminative, OriginalReconstructive, randomised
from torch import nn
from torch.nn import functional as F

from draem_plugin import DraemPlugin
from draem_plugin.original_weights import convert_original, find_original_pairs, import_original, load_original

WIDTHS = (8, 4)  # any widths must work; the released ones are 128 / 64
SIZE = 64


@pytest.fixture
def released(tmp_path: Path) -> tuple[Path, Path, nn.Module, nn.Module]:
    """The reference networks saved as the original does, for category bottle."""
    reconstructive, discriminative = (
        randomised(OriginalReconstructive(WIDTHS[0]), 1),
        randomised(OriginalDiscriminative(WIDTHS[1]), 2),
    )
    run = tmp_path / "DRAEM_test_0.0001_700_bs8_bottle_"
    torch.save(reconstructive.state_dict(), f"{run}.pckl")
    torch.save(discriminative.state_dict(), f"{run}_seg.pckl")
    return Path(f"{run}.pckl"), Path(f"{run}_seg.pckl"), reconstructive, discriminative


def reference(reconstructive: nn.Module, discriminative: nn.Module, rgb: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """What test_DRAEM.py computes on the image in BGR (as cv2 reads it): reconstruction, map, image score."""
    bgr = rgb[:, [2, 1, 0]]
    with torch.no_grad():
        reconstruction = reconstructive(bgr)
        softmax = torch.softmax(discriminative(torch.cat((reconstruction, bgr), dim=1)), dim=1)
    score = F.avg_pool2d(softmax[:, 1:], 21, stride=1, padding=10).flatten(1).amax(dim=1)
    return reconstruction, softmax[:, 1], score


def test_imported_weights_compute_what_the_original_computes_on_bgr(released: tuple) -> None:
    """In float64 the two agree to rounding; in float32 the permuted channel sums round differently, within 1e-4."""
    rec_path, seg_path, reconstructive, discriminative = released
    model = DraemPlugin.from_original(rec_path, seg_path, image_size=SIZE).eval()
    assert (model.hparams.reconstructive_width, model.hparams.discriminative_width) == WIDTHS
    rgb = torch.rand(3, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(0))
    for dtype, tolerance in ((torch.float64, 1e-5), (torch.float32, 1e-4)):
        networks = [module.to(dtype) for module in (reconstructive, discriminative, model)]
        reconstruction, anomaly_map, score = reference(*networks[:2], rgb.to(dtype))
        with torch.no_grad():
            ours = model.model(rgb.to(dtype))
            ours_reconstruction = model.model.reconstructive_subnetwork(rgb.to(dtype))
        torch.testing.assert_close(ours.anomaly_map.to(dtype), anomaly_map, atol=tolerance, rtol=0)
        torch.testing.assert_close(ours.pred_score.to(dtype), score, atol=tolerance, rtol=0)
        torch.testing.assert_close(ours_reconstruction, reconstruction[:, [2, 1, 0]], atol=tolerance * 10, rtol=0)
    assert anomaly_map.std() > 1e-3  # a map with structure, not a constant


def test_the_checkpoint_loads_as_anomalib_loads_it(released: tuple, tmp_path: Path) -> None:
    rec_path, seg_path, reconstructive, discriminative = released
    checkpoint = import_original(rec_path, seg_path, tmp_path / "bottle.ckpt", image_size=SIZE)
    model = DraemPlugin.load_from_checkpoint(checkpoint).eval()  # weights_only=True, as anomalib 2.7 loads
    assert [t.size for t in model.pre_processor.transform.transforms] == [[SIZE, SIZE]]
    assert model.model.score_filter_size == 21
    rgb = torch.rand(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = reference(reconstructive, discriminative, rgb)[1]
        torch.testing.assert_close(model.model(rgb).anomaly_map, expected, atol=1e-4, rtol=0)


def test_pairs_are_found_by_category(released: tuple, tmp_path: Path) -> None:
    rec_path, seg_path, *_ = released
    assert find_original_pairs(tmp_path, ["bottle", "cable"]) == {"bottle": (rec_path, seg_path)}
    torch.save({}, tmp_path / "other_run_bottle__seg.pckl")
    torch.save({}, tmp_path / "other_run_bottle_.pckl")
    with pytest.raises(ValueError, match=r"holds 2 runs for 'bottle'"):
        find_original_pairs(tmp_path, ["bottle"])


def test_the_widths_in_the_arguments_must_agree_with_the_files(released: tuple) -> None:
    rec_path, seg_path, *_ = released
    with pytest.raises(ValueError, match="reconstructive_width=128 was given, but the weights have base width 8"):
        DraemPlugin.from_original(rec_path, seg_path, reconstructive_width=128)


def test_the_released_weights_need_batchnorm(released: tuple) -> None:
    rec_path, seg_path, *_ = released
    with pytest.raises(ValueError, match="use BatchNorm; leave normalization out"):
        DraemPlugin.from_original(rec_path, seg_path, normalization="group")


# ------------------------------------------------------------------------------------------------ bad files
def test_keys_missing_or_unexpected_are_listed(released: tuple, tmp_path: Path) -> None:
    rec_path, *_ = released
    state = torch.load(rec_path, weights_only=True)
    del state["decoder.db2.3.weight"], state["encoder.block5.4.running_var"]
    state["decoder.extra.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "edited.pckl")
    with pytest.raises(
        ValueError,
        match=r"edited.pckl: not the original reconstructive network's state dict: keys "
        r"2 missing \(decoder.db2.3.weight, encoder.block5.4.running_var\), "
        r"1 unexpected \(decoder.extra.weight\)",
    ):
        load_original(tmp_path / "edited.pckl", "reconstructive")


def test_shapes_that_fit_no_architecture_are_named(released: tuple, tmp_path: Path) -> None:
    rec_path, seg_path, *_ = released
    state = torch.load(rec_path, weights_only=True)
    state["decoder.db3.0.weight"] = torch.zeros(16, 16, 5, 5)
    torch.save(state, tmp_path / "odd_.pckl")
    with pytest.raises(
        ValueError, match=r"do not fit one DRÆM architecture at base widths 8 / 4.*decoder\.2\.1\.0\.weight"
    ):
        DraemPlugin.from_original(tmp_path / "odd_.pckl", seg_path)


def test_swapped_files_are_recognised(released: tuple) -> None:
    rec_path, seg_path, *_ = released
    with pytest.raises(
        ValueError,
        match=r"discriminative network's state dict, but it was given as the reconstructive one: the two files are",
    ):
        DraemPlugin.from_original(seg_path, rec_path)


def test_a_lightning_checkpoint_is_sent_to_the_ckpt_path(released: tuple, tmp_path: Path) -> None:
    rec_path, seg_path, *_ = released
    checkpoint = import_original(rec_path, seg_path, tmp_path / "model.ckpt", image_size=SIZE)
    with pytest.raises(
        ValueError,
        match=r"is a Lightning checkpoint.*use it directly, e.g. anomalib test --model DraemPlugin --ckpt_path",
    ):
        load_original(checkpoint, "reconstructive")


@pytest.mark.parametrize("content", ["truncated", "text", "list", "missing"])
def test_files_that_are_no_state_dict_are_named(released: tuple, tmp_path: Path, content: str) -> None:
    rec_path, *_ = released
    path = tmp_path / "bad_.pckl"
    if content == "truncated":
        path.write_bytes(rec_path.read_bytes()[:5000])
    elif content == "text":
        path.write_text("<html>404 Not Found</html>")
    elif content == "list":
        torch.save([torch.zeros(2)], path)
    error = FileNotFoundError if content == "missing" else ValueError
    match = {
        "truncated": "not a readable torch file.*truncated",
        "text": "not a readable torch file",
        "list": "holds a list, not a state dict of tensors",
        "missing": "does not exist",
    }[content]
    with pytest.raises(error, match=match):
        load_original(path, "reconstructive")


def test_conversion_permutes_exactly_the_colour_channels(released: tuple) -> None:
    rec_path, seg_path, *_ = released
    reconstructive, discriminative = (
        load_original(rec_path, "reconstructive"),
        load_original(seg_path, "discriminative"),
    )
    state, _, _ = convert_original(reconstructive, discriminative)
    first = reconstructive["encoder.block1.0.weight"]
    torch.testing.assert_close(state["reconstructive_subnetwork.encoder.0.0.weight"], first[:, [2, 1, 0]])
    seg_first = discriminative["encoder_segment.block1.0.weight"]
    torch.testing.assert_close(state["discriminative_subnetwork.encoder.0.0.weight"], seg_first[:, [2, 1, 0, 5, 4, 3]])
    torch.testing.assert_close(
        state["reconstructive_subnetwork.head.bias"], reconstructive["decoder.fin_out.0.bias"][[2, 1, 0]]
    )
    torch.testing.assert_close(
        state["discriminative_subnetwork.head.weight"], discriminative["decoder_segment.fin_out.0.weight"]
    )
