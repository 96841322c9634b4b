"""Shared fixtures: tiny model settings, a tiny SurfaceDemo category, the path of ../shared."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"

#: Tiny DraemPlugin settings for CPU tests.
TINY = {"reconstructive_width": 4, "discriminative_width": 4, "image_size": 64, "score_filter_size": 7}


def shared_path(*parts: str) -> Path:
    """Path under ../shared, or skip the test when it is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent (../shared is optional)")
    return path


@pytest.fixture(scope="session")
def demo_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny SurfaceDemo dataset (64 px), built once per session."""
    from draem_plugin.data import build_surface_demo  # noqa: PLC0415

    root = tmp_path_factory.mktemp("surface_demo")
    build_surface_demo(root, "brick", image_size=64, num_train=8, num_test_good=4, num_test_defect=2)
    return root


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
