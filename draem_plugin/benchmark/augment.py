"""``draem-bench augment``: anomaly-synthesis throughput, PerlinAnomalyAugmenter against anomalib's generator.

Both draw textures from the same folder, get the same batch of images (random, in ``[0, 1]``) on the same device, and
are timed alternately after warm-up. DraemPlugin's augmenter is built as DraemPlugin builds it for training
(``augmentation_preset="original"``); anomalib's ``PerlinAnomalyGenerator`` as anomalib's ``Draem`` builds it
(``blend_factor=(0.1, 1.0)``, the texture folder as ``anomaly_source_path``). Set-up time (DraemPlugin decodes the
whole texture folder once; anomalib lists the files and decodes one per anomalous sample) is reported apart.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch

from .memory import PeakMemory
from .settings import Device, TimedSettings, default_texture_source, quiet, resolve_device
from .timing import summarise, time_alternately

__all__ = ["Augment"]


def build_augmenters(
    source: Path,
    image_size: int,
    device: torch.device,
    seed: int,
) -> tuple[Any, Any, dict[str, float]]:
    """DraemPlugin's and anomalib's augmenters on ``device``, and their construction seconds."""
    from anomalib.data.utils.generators.perlin import PerlinAnomalyGenerator

    from draem_plugin.augmentation import PerlinAnomalyAugmenter

    start = time.perf_counter()
    plugin = PerlinAnomalyAugmenter.from_preset(
        "original",
        anomaly_source_path=source,
        source_size=image_size,
        seed=seed,
    ).to(device)
    plugin_setup = time.perf_counter() - start
    start = time.perf_counter()
    anomalib = PerlinAnomalyGenerator(anomaly_source_path=source, blend_factor=(0.1, 1.0))
    anomalib_setup = time.perf_counter() - start
    if not anomalib.anomaly_source_paths:
        msg = f"anomalib's PerlinAnomalyGenerator found no image under {source}: the comparison would not be fair."
        raise ValueError(msg)
    return plugin, anomalib, {"plugin_setup_s": plugin_setup, "anomalib_setup_s": anomalib_setup}


@dataclass
class Augment(TimedSettings):
    """Augmenter throughput: DraemPlugin's PerlinAnomalyAugmenter against anomalib's PerlinAnomalyGenerator.

    Args:
        device: cpu or cuda, or a list of both (e.g. [cpu,cuda]).
        batch_size: Batch size, or a list of them.
        rounds: Alternating rounds (the order flips every round).
    """

    NAME: ClassVar[str] = "augment"
    TITLE: ClassVar[str] = "augment: images/s of anomaly synthesis (ratio = DraemPlugin / anomalib)"
    COLUMNS: ClassVar[tuple[str, ...]] = (
        "device",
        "batch_size",
        "image_size",
        "plugin_images_per_s",
        "anomalib_images_per_s",
        "ratio",
        "plugin_ms_per_batch",
        "anomalib_ms_per_batch",
    )

    device: Device | list[Device] = "cpu"
    batch_size: int | list[int] = field(default_factory=lambda: [8, 32])
    rounds: int = 3

    def measure(self) -> list[dict[str, Any]]:
        """Measure both augmenters for every device and batch size; one row per comparison.

        ``ratio`` is DraemPlugin's images/s over anomalib's (above 1: DraemPlugin is faster).
        """
        source = default_texture_source(self.source)
        devices = self.device if isinstance(self.device, list) else [self.device]
        batch_sizes = self.batch_size if isinstance(self.batch_size, list) else [self.batch_size]
        rows = []
        for device_name in devices:
            device = resolve_device(device_name)
            with quiet():
                plugin, anomalib, setup = build_augmenters(source, self.image_size, device, self.seed)
            for batch_size in batch_sizes:
                generator = torch.Generator().manual_seed(self.seed)
                images = torch.rand(batch_size, 3, self.image_size, self.image_size, generator=generator).to(device)
                torch.manual_seed(self.seed)
                times = time_alternately(
                    {"plugin": lambda: plugin(images), "anomalib": lambda: anomalib(images)},  # noqa: B023
                    device,
                    warmup=self.warmup,
                    rounds=self.rounds,
                    iters=self.iters,
                )
                with PeakMemory(device) as plugin_peak:
                    plugin(images)
                with PeakMemory(device) as anomalib_peak:
                    anomalib(images)
                ours, theirs = summarise(times["plugin"], batch_size), summarise(times["anomalib"], batch_size)
                rows.append(
                    {
                        "device": device.type,
                        "batch_size": batch_size,
                        "image_size": self.image_size,
                        "plugin_images_per_s": ours["images_per_s"],
                        "anomalib_images_per_s": theirs["images_per_s"],
                        "ratio": ours["images_per_s"] / theirs["images_per_s"],
                        "plugin_ms_per_batch": ours["latency_ms_p50"],
                        "anomalib_ms_per_batch": theirs["latency_ms_p50"],
                        "plugin_ms_p90": ours["latency_ms_p90"],
                        "anomalib_ms_p90": theirs["latency_ms_p90"],
                        "plugin_peak_mem_mib": plugin_peak.mib,
                        "anomalib_peak_mem_mib": anomalib_peak.mib,
                        "batches_timed": ours["batches"],
                        "source": str(source),
                        "source_images_plugin": len(plugin.bank),
                        "source_images_anomalib": len(anomalib.anomaly_source_paths),
                        **setup,
                    },
                )
        return rows
