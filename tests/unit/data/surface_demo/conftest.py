"""The tiny SurfaceDemo category the SurfaceDemo tests share, built once per module that asks for it."""

from __future__ import annotations

from pathlib import Path

import pytest

from draem_plugin.data import build_surface_demo

#: Tiny build parameters: 64 px, 4 train, 3 good test and 2 images per defect type.
SMALL = {"image_size": 64, "num_train": 4, "num_test_good": 3, "num_test_defect": 2}


@pytest.fixture(scope="module")
def brick(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_surface_demo(tmp_path_factory.mktemp("surface_demo"), "brick", **SMALL)
