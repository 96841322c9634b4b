"""Shared fixtures: tiny datasets built once per session, texture folders, the offline backbone, quiet settings."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from support import HF_HOME, needs_backbone


@pytest.fixture(scope="session")
def demo_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny SurfaceDemo dataset (64 px), built once per session."""
    from draem_plugin.data import build_surface_demo

    root = tmp_path_factory.mktemp("surface_demo")
    build_surface_demo(root, "brick", image_size=64, num_train=8, num_test_good=4, num_test_defect=2)
    return root


@pytest.fixture(scope="session")
def mvtec_root(demo_root: Path) -> Path:
    """A tiny MVTec-layout dataset ROOT/brick (64 px, 8 train, 4 good + 2 of each defect test images)."""
    return demo_root


@pytest.fixture(scope="session")
def textures(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four small random-colour texture images in a folder (both augmenters draw from it)."""
    folder = tmp_path_factory.mktemp("textures")
    rng = np.random.default_rng(0)
    for index in range(4):
        Image.fromarray(rng.integers(0, 256, size=(48, 40, 3), dtype=np.uint8)).save(folder / f"texture_{index}.png")
    return folder


@pytest.fixture
def backbone_home() -> Path:
    """The offline Hugging Face cache of ../shared (the test is skipped when it is absent)."""
    return needs_backbone()


@pytest.fixture
def backbone_available() -> bool:
    """Whether ../shared's offline backbone cache exists (for tests that add PatchCore / PaDiM when it does)."""
    return (HF_HOME / "hub").is_dir()


@pytest.fixture
def offline_backbone(monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point this process's Hugging Face hub at ../shared's offline cache (undone after the test)."""
    from huggingface_hub import constants

    home = needs_backbone()
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HOME", str(home))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(home / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return home


@pytest.fixture(autouse=True)
def _quiet_offline_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("PYTHONWARNINGS", os.environ.get("PYTHONWARNINGS", "ignore::FutureWarning"))


@pytest.fixture
def one_thread() -> Iterator[None]:
    """One intra-op thread: the tiny networks gain nothing from more, and the CPU is shared with other tests."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
