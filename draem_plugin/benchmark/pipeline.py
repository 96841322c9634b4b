"""``draem-bench pipeline``: where a real training step's time goes, with and without the device image cache.

DraemPlugin trains through anomalib's ``Engine`` on an anomalib datamodule (MVTec layout under ``root``, or the
embedded ``SurfaceDemo``) once with ``cache_train_images=True`` and once with ``False``, each measured as
``draem-reproduce`` measures a run (:func:`draem_plugin.reproduce.fit_and_measure`): training images/s inside
Lightning's loop, images/s of the networks alone and the share of the step spent outside the networks (data loading,
anomaly synthesis, Lightning's loop and logging).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from .settings import BenchSettings, quiet

__all__ = ["Pipeline"]


@dataclass
class Pipeline(BenchSettings):
    """Training images/s in Lightning's loop against the networks alone, with and without the device image cache.

    Args:
        root: Dataset root in the MVTec AD layout (default: the embedded SurfaceDemo, built on first use).
        category: Category under root (SurfaceDemo: brick, grass or gravel).
        source: Texture folder of the anomaly synthesis (default: procedural textures).
        epochs: Training epochs per run.
        channels_last: channels_last memory format.
        num_workers: Data loader workers of the datamodule.
    """

    NAME: ClassVar[str] = "pipeline"
    TITLE: ClassVar[str] = (
        "pipeline: training images/s and the share of step time outside the networks (ratio = over uncached)"
    )
    COLUMNS: ClassVar[tuple[str, ...]] = (
        "device",
        "cache_train_images",
        "num_workers",
        "precision",
        "widths",
        "image_size",
        "train_images_per_s",
        "network_images_per_s",
        "share_outside_networks",
        "ratio",
    )

    root: str | None = None
    category: str = "brick"
    epochs: int = 3
    channels_last: bool = False
    num_workers: int = 8

    def _datamodule(self) -> Any:
        from anomalib.data import MVTecAD

        from draem_plugin.data import SurfaceDemo

        common = {"category": self.category, "train_batch_size": self.batch_size, "num_workers": self.num_workers}
        if self.root is None:
            return SurfaceDemo(image_size=self.image_size, **common)
        return MVTecAD(root=self.root, **common)

    def measure(self) -> list[dict[str, Any]]:
        """Train ``epochs`` epochs with the image cache on and off; one row each (``ratio``: images/s over uncached)."""
        from lightning.pytorch import seed_everything

        from draem_plugin import DraemPlugin
        from draem_plugin.reproduce import fit_and_measure

        if self.epochs < 2:
            msg = f"epochs must be at least 2 (the first epoch is warm-up), got {self.epochs}."
            raise ValueError(msg)
        device = self.torch_device()
        rows = []
        for cache in (True, False):
            seed_everything(self.seed)
            with quiet(), tempfile.TemporaryDirectory() as out:
                model = DraemPlugin(
                    anomaly_source_path=self.source,
                    reconstructive_width=self.reconstructive_width,
                    discriminative_width=self.discriminative_width,
                    image_size=self.image_size,
                    channels_last=self.channels_last,
                    cache_train_images=cache,
                    seed=self.seed,
                    evaluator=False,
                    visualizer=False,
                )
                _, figures = fit_and_measure(
                    model,
                    self._datamodule(),
                    Path(out),
                    accelerator=device.type,
                    devices=1,
                    precision=self.precision,
                    max_epochs=self.epochs,
                    enable_progress_bar=False,
                    num_sanity_val_steps=0,
                    limit_val_batches=0,
                )
            rows.append(
                {
                    "device": device.type,
                    "cache_train_images": cache,
                    "num_workers": self.num_workers,
                    "precision": self.precision,
                    "widths": f"{self.reconstructive_width}/{self.discriminative_width}",
                    "image_size": self.image_size,
                    "epochs": self.epochs,
                    "batch_size": self.batch_size,
                    "train_images_per_s": figures["train_images_per_second"],
                    "network_images_per_s": figures.get("network_images_per_second", float("nan")),
                    "share_outside_networks": figures.get("share_outside_networks", float("nan")),
                    "fit_s": figures["fit_seconds_this_run"],
                }
            )
        for row in rows:
            row["ratio"] = row["train_images_per_s"] / rows[1]["train_images_per_s"]
        return rows
