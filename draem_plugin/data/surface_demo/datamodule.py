"""SurfaceDemo: a small MVTec-style anomaly dataset built offline from scikit-image's texture photographs.

The images (:mod:`.render`) are built deterministically from ``build_seed`` without any download, into
``<root>/<category>`` in MVTec AD layout (:mod:`.build`), the first time ``prepare_data`` runs.

Example:
    >>> from draem_plugin.data import SurfaceDemo
    >>> datamodule = SurfaceDemo(category="grass", image_size=128)
    >>> datamodule.prepare_data()  # builds ./datasets/surface_demo/grass once, then reuses it
    >>> datamodule.setup()
    >>> next(iter(datamodule.train_dataloader())).image.shape
    torch.Size([32, 3, 128, 128])
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from anomalib.data import MVTecAD
from anomalib.data.utils import TestSplitMode, ValSplitMode
from anomalib.utils.path import resolve_dataset_root

from .build import MANIFEST_NAME, build_surface_demo, check_params

if TYPE_CHECKING:
    from torchvision.transforms.v2 import Transform

__all__ = ["SurfaceDemo"]


class SurfaceDemo(MVTecAD):
    """MVTec AD datamodule over SurfaceDemo data, built offline by :func:`build_surface_demo` in ``prepare_data``.

    Takes every argument of anomalib's ``MVTecAD`` (``seed`` seeds the val/test splits) plus the build
    parameters below.

    Args:
        root: Directory holding one folder per category; ``None`` uses anomalib's dataset cache directory.
        category: Texture, one of ``"brick"``, ``"grass"``, ``"gravel"``.
        train_batch_size: Training batch size.
        eval_batch_size: Validation and test batch size.
        num_workers: Number of data loader workers.
        train_augmentations: Augmentations of training images.
        val_augmentations: Augmentations of validation images.
        test_augmentations: Augmentations of test images.
        augmentations: Augmentations of any subset without its own.
        test_split_mode: How to obtain the test set.
        test_split_ratio: Fraction of training images used for testing if the test set has no normal images.
        val_split_mode: How to obtain the validation set.
        val_split_ratio: Fraction of images used for validation.
        seed: Seed of the validation/test splits.
        image_size: Side of the square images in pixels, at least ``MIN_IMAGE_SIZE`` (32).
        num_train: Number of normal training images.
        num_test_good: Number of normal test images.
        num_test_defect: Number of test images for each defect type (scratch, crack, hole, stain).
        build_seed: Seed of the image rendering; the same build parameters give byte-identical files.

    Example:
        >>> datamodule = SurfaceDemo(root="./datasets/surface_demo", category="brick", image_size=64, num_train=8)
        >>> datamodule.prepare_data()
        >>> datamodule.setup()
        >>> batch = next(iter(datamodule.test_dataloader()))
        >>> batch.image.shape, batch.gt_mask.shape
        (torch.Size([32, 3, 64, 64]), torch.Size([32, 64, 64]))
    """

    def __init__(
        self,
        root: Path | str | None = "./datasets/surface_demo",
        category: str = "brick",
        train_batch_size: int = 32,
        eval_batch_size: int = 32,
        num_workers: int = 8,
        train_augmentations: Transform | None = None,
        val_augmentations: Transform | None = None,
        test_augmentations: Transform | None = None,
        augmentations: Transform | None = None,
        test_split_mode: TestSplitMode | str = TestSplitMode.FROM_DIR,
        test_split_ratio: float = 0.2,
        val_split_mode: ValSplitMode | str = ValSplitMode.SAME_AS_TEST,
        val_split_ratio: float = 0.5,
        seed: int | None = None,
        image_size: int = 256,
        num_train: int = 64,
        num_test_good: int = 16,
        num_test_defect: int = 8,
        build_seed: int = 0,
    ) -> None:
        check_params(category, image_size, num_train, num_test_good, num_test_defect, build_seed)
        super().__init__(
            root=resolve_dataset_root(root, "surface_demo"),
            category=category,
            train_batch_size=train_batch_size,
            eval_batch_size=eval_batch_size,
            num_workers=num_workers,
            train_augmentations=train_augmentations,
            val_augmentations=val_augmentations,
            test_augmentations=test_augmentations,
            augmentations=augmentations,
            test_split_mode=test_split_mode,
            test_split_ratio=test_split_ratio,
            val_split_mode=val_split_mode,
            val_split_ratio=val_split_ratio,
            seed=seed,
        )
        self.image_size = image_size
        self.num_train = num_train
        self.num_test_good = num_test_good
        self.num_test_defect = num_test_defect
        self.build_seed = build_seed

    def prepare_data(self) -> None:
        """Build the category folder under ``root``, or reuse it if it was built with the same parameters."""
        build_surface_demo(
            self.root,
            self.category,
            image_size=self.image_size,
            num_train=self.num_train,
            num_test_good=self.num_test_good,
            num_test_defect=self.num_test_defect,
            seed=self.build_seed,
        )

    def _setup(self, _stage: str | None = None) -> None:
        if not (self.root / self.category / MANIFEST_NAME).is_file():
            msg = (
                f"No SurfaceDemo data in {self.root / self.category}; call prepare_data() before setup() "
                "(anomalib's Engine does this for you)."
            )
            raise FileNotFoundError(msg)
        super()._setup(_stage)
