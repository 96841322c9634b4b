"""SplitCheck at the unit level: image scans, size rules and the pre-processor rule (end to end: tests/integration)."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from anomalib.pre_processing import PreProcessor
from PIL import Image
from torchvision.transforms.v2 import Compose, Normalize, Resize

from draem_plugin.data.checks import SplitCheck, scan_images

LOGGER = "draem_plugin.data.checks"


def test_scan_counts_sizes_and_modes_and_names_bad_files(tmp_path: Path) -> None:
    Image.fromarray(np.zeros((40, 30, 3), dtype=np.uint8)).save(tmp_path / "rgb.png")
    Image.fromarray(np.zeros((40, 30), dtype=np.uint8)).save(tmp_path / "grey.png")
    Image.fromarray(np.zeros((40, 30), dtype=np.uint16)).save(tmp_path / "deep.png")
    (tmp_path / "broken.png").write_bytes(b"not a png")
    scan = scan_images(str(tmp_path / name) for name in ("rgb.png", "grey.png", "deep.png", "broken.png"))
    assert scan.sizes == Counter({(40, 30): 3})
    assert scan.modes["RGB"] == 1 and scan.modes["L"] == 1
    assert [entry.split(" (")[0] for entry in scan.unreadable] == [str(tmp_path / "broken.png")]
    assert scan.high_bit_depth == [f"{tmp_path / 'deep.png'} (I;16)"]


def module(transform: object) -> SimpleNamespace:
    return SimpleNamespace(pre_processor=PreProcessor(transform=transform), evaluator=None)


def test_sizes_the_networks_cannot_take_are_a_problem_only_without_resizing(caplog: pytest.LogCaptureFixture) -> None:
    check = SplitCheck(size_multiple=32)
    sizes = Counter({(64, 48): 2})
    (problem,) = check._size_problems(module(None), "train split", sizes)
    assert "64x48 (2)" in problem and "multiples of 32" in problem
    assert check._size_problems(module(None), "train split", Counter({(64, 96): 1})) == []
    with caplog.at_level(logging.INFO, logger=LOGGER):
        assert check._size_problems(module(Compose([Resize((64, 64))])), "train split", sizes) == []
    assert "resized to 64x64" in caplog.text and "aspect ratio changes" in caplog.text


def test_a_normalising_pre_processor_is_refused_at_train_start() -> None:
    with pytest.raises(ValueError, match="remove Normalize"):
        SplitCheck(32).on_train_start(None, module(Compose([Resize((64, 64)), Normalize([0.5] * 3, [0.5] * 3)])))
    SplitCheck(32).on_train_start(None, module(Compose([Resize((64, 64))])))
