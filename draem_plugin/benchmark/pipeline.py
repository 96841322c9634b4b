"""``draem-bench pipeline``: where a real training step's time goes, with and without the device image cache.

DraemPlugin trains through anomalib's ``Engine`` on an anomalib datamodule (MVTec layout under ``root``, or the
embedded ``SurfaceDemo``) once with ``cache_train_images=True`` and once with ``False``. For each run the table gives
the training images/s inside Lightning's loop (:class:`~draem_plugin.throughput.ThroughputMonitor`, first epoch
excluded), the images/s of the networks alone (:func:`~draem_plugin.throughput.network_images_per_second`: forward,
loss, backward, Adam on a fixed batch; measured once, best of three rounds) and the share of the step spent outside
the networks: data loading, anomaly synthesis, Lightning's loop and logging.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from .common import quiet, resolve_device

__all__ = ["COLUMNS", "run_pipeline"]

COLUMNS = (
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


def _datamodule(root: str | Path | None, category: str, image_size: int, batch_size: int, num_workers: int) -> Any:  # noqa: ANN401
    from anomalib.data import MVTecAD  # noqa: PLC0415

    from draem_plugin.data import SurfaceDemo  # noqa: PLC0415

    if root is None:
        return SurfaceDemo(category=category, image_size=image_size, train_batch_size=batch_size,
                           num_workers=num_workers)  # fmt: skip
    return MVTecAD(root=root, category=category, train_batch_size=batch_size, num_workers=num_workers)


def run_pipeline(
    root: str | Path | None = None,
    category: str = "brick",
    source: str | Path | None = None,
    device: str = "cpu",
    epochs: int = 3,
    batch_size: int = 8,
    image_size: int = 256,
    reconstructive_width: int = 128,
    discriminative_width: int = 64,
    precision: str = "32-true",
    channels_last: bool = False,
    num_workers: int = 8,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Train ``epochs`` epochs with the image cache on and off; one row each (``ratio``: images/s over uncached)."""
    from anomalib.engine import Engine  # noqa: PLC0415
    from lightning.pytorch import seed_everything  # noqa: PLC0415

    from draem_plugin import DraemPlugin  # noqa: PLC0415
    from draem_plugin.throughput import ThroughputMonitor, network_images_per_second  # noqa: PLC0415

    if epochs < 2:
        msg = f"epochs must be at least 2 (the first epoch is warm-up and not timed), got {epochs}."
        raise ValueError(msg)
    dev = resolve_device(device)
    with quiet():
        networks = network_images_per_second(reconstructive_width, discriminative_width, image_size, batch_size,
                                             precision, channels_last, device=dev)  # fmt: skip
    rows = []
    for cache in (True, False):
        seed_everything(seed)
        with quiet(), tempfile.TemporaryDirectory() as out:
            model = DraemPlugin(
                anomaly_source_path=source, reconstructive_width=reconstructive_width,
                discriminative_width=discriminative_width, image_size=image_size, channels_last=channels_last,
                cache_train_images=cache, seed=seed, evaluator=False, visualizer=False,
            )  # fmt: skip
            monitor = ThroughputMonitor()
            engine = Engine(accelerator=dev.type, devices=1, precision=precision, max_epochs=epochs,
                            callbacks=[monitor], logger=False, default_root_dir=out, enable_progress_bar=False,
                            num_sanity_val_steps=0, limit_val_batches=0)  # fmt: skip
            start = time.perf_counter()
            engine.fit(model, datamodule=_datamodule(root, category, image_size, batch_size, num_workers))
            fit_seconds = time.perf_counter() - start
        rows.append({
            "device": dev.type,
            "cache_train_images": cache,
            "num_workers": num_workers,
            "precision": precision,
            "widths": f"{reconstructive_width}/{discriminative_width}",
            "image_size": image_size,
            "epochs": epochs,
            "batch_size": batch_size,
            "train_images_per_s": monitor.images_per_second,
            "network_images_per_s": networks,
            "share_outside_networks": max(0.0, 1 - monitor.images_per_second / networks),
            "fit_s": fit_seconds,
        })  # fmt: skip
    for row in rows:
        row["ratio"] = row["train_images_per_s"] / rows[1]["train_images_per_s"]
    return rows
