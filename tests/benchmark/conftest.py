"""Fixtures of the ``draem-bench`` tests: a tiny texture folder, a tiny MVTec-layout dataset, the offline backbone."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
HF_HOME = SHARED / "weights" / "hf_home"
BACKBONE = "resnet18.tv_in1k"


def needs_backbone() -> Path:
    """The offline Hugging Face cache of ../shared, or skip (PatchCore / PaDiM need an ImageNet backbone)."""
    if not (HF_HOME / "hub").is_dir():
        pytest.skip(f"{HF_HOME} is absent (../shared is optional): PatchCore and PaDiM need its offline backbone")
    return HF_HOME


@pytest.fixture
def backbone_home() -> Path:
    """The offline Hugging Face cache of ../shared (the test is skipped when it is absent)."""
    return needs_backbone()


@pytest.fixture
def backbone_available() -> bool:
    """Whether ../shared's offline backbone cache exists (for tests that add PatchCore / PaDiM when it does)."""
    return (HF_HOME / "hub").is_dir()


@pytest.fixture(scope="session")
def textures(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four small random-colour texture images in a folder (both augmenters draw from it)."""
    folder = tmp_path_factory.mktemp("textures")
    rng = np.random.default_rng(0)
    for index in range(4):
        array = rng.integers(0, 256, size=(48, 40, 3), dtype=np.uint8)
        Image.fromarray(array).save(folder / f"texture_{index}.png")
    return folder


@pytest.fixture(scope="session")
def mvtec_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny MVTec-layout dataset ROOT/brick (64 px, 8 train, 4 good + defect test images)."""
    from draem_plugin.data import build_surface_demo  # noqa: PLC0415

    root = tmp_path_factory.mktemp("mvtec_layout")
    build_surface_demo(root, "brick", image_size=64, num_train=8, num_test_good=4, num_test_defect=2)
    return root


@pytest.fixture
def offline_backbone(monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point this process's Hugging Face hub at ../shared's offline cache (undone after the test)."""
    import huggingface_hub.constants as constants  # noqa: PLC0415

    home = needs_backbone()
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HOME", str(home))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(home / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return home
