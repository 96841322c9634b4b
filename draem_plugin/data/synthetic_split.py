"""A validation set without real defects: SurfaceDemo's defects drawn onto held-out normal images of a category.

Choosing settings (learning rate, budget, image size, score filter) on the test split one reports inflates the
figures; an inspection line often has no defect images to spare at all. :func:`build_synthetic_split` turns a
category's *training* images into an MVTec-layout category of its own: a share of them is held out, and defects
unlike DRÆM's training synthesis (SurfaceDemo's scratches, cracks, holes and stains, with exact masks) are drawn onto
copies of the held-out images. Train on ``<out>/<name>/train/good`` and test on its ``test`` split to compare
settings; the real test split stays untouched until the settings are fixed.

Example:
    >>> build_synthetic_split("../shared/data/mvtec_ad/bottle", "datasets/synthetic", image_size=128)  # doctest: +SKIP
    PosixPath('datasets/synthetic/bottle_synthetic')

Command line::

    python -m draem_plugin.data.synthetic_split --source ../shared/data/mvtec_ad/bottle --output datasets/synthetic
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from .images import IMAGE_EXTENSIONS, decode_image
from .surface_demo.render import DEFECT_TYPES, add_defect

__all__ = ["build_synthetic_split", "main"]

logger = logging.getLogger(__name__)

MANIFEST_NAME = "synthetic_split.json"


def build_synthetic_split(
    source: str | Path,
    output: str | Path,
    image_size: int = 128,
    holdout: float = 0.2,
    defects_per_image: int = 1,
    seed: int = 0,
) -> Path:
    """Write ``<output>/<category>_synthetic`` in MVTec layout from ``<source>/train/good``; return that folder.

    Args:
        source: an MVTec-layout category folder (only its ``train/good`` images are read).
        output: folder that receives the new category.
        image_size: side of the square images written (the model's input size: defects are drawn at that size).
        holdout: share of the training images held out for validation (the rest stays in ``train/good``).
        defects_per_image: defective copies made of each held-out image (each with a random defect type).
        seed: seed of the hold-out choice and of the defects.

    Raises:
        FileNotFoundError: ``source`` has no training images.
        ValueError: ``holdout`` leaves no image on one side.
    """
    source, output = Path(source), Path(output)
    files = sorted(path for path in (source / "train" / "good").glob("*") if path.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        msg = f"no training images under {source / 'train' / 'good'}; pass an MVTec-layout category folder."
        raise FileNotFoundError(msg)
    held = round(holdout * len(files))
    if not 0 < held < len(files):
        msg = f"holdout={holdout} of {len(files)} training images leaves none on one side; use a share in (0, 1)."
        raise ValueError(msg)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(files))
    validation, training = sorted(order[:held]), sorted(order[held:])
    target = output / f"{source.name}_synthetic"
    if target.exists():
        shutil.rmtree(target)
    manifest: dict[str, object] = {
        "source": str(source),
        "image_size": image_size,
        "holdout": holdout,
        "seed": seed,
        "train": [files[i].name for i in training],
        "validation": [files[i].name for i in validation],
    }

    def image(index: int) -> np.ndarray:
        decoded = decode_image(files[index]).convert("RGB").resize((image_size, image_size), Image.Resampling.BILINEAR)
        return np.asarray(decoded, dtype=np.float32) / 255.0

    def write(path: Path, array: np.ndarray) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(array).save(path)

    for index in training:
        write(target / "train" / "good" / f"{files[index].stem}.png", np.round(image(index) * 255).astype(np.uint8))
    for number, index in enumerate(validation):
        clean = image(index)
        write(target / "test" / "good" / f"{number:03d}.png", np.round(clean * 255).astype(np.uint8))
        for copy in range(defects_per_image):
            defect = DEFECT_TYPES[int(rng.integers(len(DEFECT_TYPES)))]
            defective, mask = add_defect(clean, defect, rng)
            name = f"{number:03d}_{copy}"
            write(target / "test" / defect / f"{name}.png", defective)
            write(target / "ground_truth" / defect / f"{name}_mask.png", mask)
    (target / MANIFEST_NAME).write_text(json.dumps(manifest, indent=1) + "\n")
    logger.info("Wrote %s: %d training and %d held-out images.", target, len(training), len(validation))
    return target


def main() -> None:
    """Command line over :func:`build_synthetic_split`."""
    from jsonargparse import auto_cli

    print(auto_cli(build_synthetic_split, as_positional=False))  # noqa: T201


if __name__ == "__main__":
    main()
