"""``draem-reproduce``: the whole DRÆM reproduction on one MVTec-layout category in one command.

Trains DraemPlugin with the original recipe (700 epochs, batch 8, 256x256, Adam 1e-4, x0.2 at 80 % / 90 %) through
anomalib's Engine and ``MVTecAD`` datamodule, tests it, and prints training images/s, model FLOP utilisation, wall
time and image AUROC, pixel AUROC, pixel AP and pixel AUPRO. Runs are resumable: with ``max_time`` the run stops
cleanly and the next identical command continues from ``<output_dir>/checkpoints/last.ckpt``.

FLOPs are counted with ``torch.utils.flop_counter.FlopCounterMode`` (2 FLOPs per multiply-add) over the forward and
backward pass of both networks on the meta device (the loss adds well under 0.1 %); MFU = FLOPs per image x images/s
/ ``peak_tflops``. The share of step time outside the networks (data, anomaly synthesis, Lightning's loop) is
``1 - train images/s / network images/s``, the latter timed on the networks alone after training (see
:mod:`draem_plugin.throughput`).

Example:
    draem-reproduce --root ../shared/data/mvtec_ad --category bottle \\
        --anomaly_source_path ../shared/data/textures/dtd_lowres --precision bf16-mixed --channels_last true
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import torch
from anomalib.callbacks.checkpoint import ModelCheckpoint
from lightning.pytorch import seed_everything

from .lightning_model import DraemPlugin
from .throughput import ThroughputMonitor, network_images_per_second, training_flops_per_image

__all__ = ["main", "reproduce"]

logger = logging.getLogger(__name__)

#: Dense bf16 peak of common accelerators in TFLOP/s, used when ``peak_tflops`` is not given.
PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L40S": 362.0, "L4": 121.0}


def _peak_tflops(peak_tflops: float | None) -> float | None:
    if peak_tflops is not None or not torch.cuda.is_available():
        return peak_tflops
    name = torch.cuda.get_device_name()
    return next((value for key, value in PEAK_BF16_TFLOPS.items() if key in name), None)


def reproduce(
    root: Path,
    category: str = "bottle",
    anomaly_source_path: Path | None = None,
    epochs: int = 700,
    batch_size: int = 8,
    image_size: int = 256,
    reconstructive_width: int = 128,
    discriminative_width: int = 64,
    precision: str = "bf16-mixed",
    channels_last: bool = True,
    compile_networks: bool = False,
    accelerator: str = "auto",
    devices: int | str = 1,
    strategy: str = "auto",
    num_workers: int = 8,
    max_time: str | None = None,
    checkpoint_every_n_epochs: int = 10,
    peak_tflops: float | None = None,
    seed: int = 0,
    output_dir: Path = Path("results/reproduce"),
) -> dict[str, Any]:
    """Train and test DraemPlugin on ``root/category``, print and return the figures (also written as JSON).

    Args:
        root: folder holding MVTec-layout categories (``root/category/train/good`` ...).
        category: category to reproduce.
        anomaly_source_path: texture folder (the DTD ``images`` folder in the paper).
        epochs: training epochs (original: 700).
        batch_size: training batch size (original: 8).
        image_size: square input size (original: 256).
        reconstructive_width: base width of the auto-encoder (original: 128).
        discriminative_width: base width of the U-Net (original: 64).
        precision: Lightning precision (``32``, ``bf16-mixed``, ``16-mixed``).
        channels_last: channels-last memory format.
        compile_networks: train through ``torch.compile``.
        accelerator: Lightning accelerator.
        devices: devices per node (several GPUs use DDP).
        strategy: Lightning strategy (``auto`` picks DDP for several devices).
        num_workers: data-loader workers.
        max_time: stop training after ``DD:HH:MM:SS`` and save ``last.ckpt``; rerun the command to continue.
        checkpoint_every_n_epochs: how often ``last.ckpt`` is refreshed.
        peak_tflops: accelerator peak for MFU (default: known GPUs in bf16; otherwise MFU is not reported).
        seed: global seed.
        output_dir: where checkpoints, images and ``reproduce.json`` go.
    """
    from anomalib.data import MVTecAD  # noqa: PLC0415
    from anomalib.engine import Engine  # noqa: PLC0415

    seed_everything(seed)
    output_dir = Path(output_dir)
    checkpoint_dir = output_dir / "checkpoints"
    last = checkpoint_dir / "last.ckpt"
    model = DraemPlugin(
        anomaly_source_path=anomaly_source_path,
        reconstructive_width=reconstructive_width,
        discriminative_width=discriminative_width,
        image_size=image_size,
        channels_last=channels_last,
        compile_networks=compile_networks,
        seed=seed,
    )
    datamodule = MVTecAD(
        root=root, category=category, train_batch_size=batch_size, eval_batch_size=32, num_workers=num_workers,
    )  # fmt: skip
    monitor = ThroughputMonitor()
    checkpoint = ModelCheckpoint(dirpath=checkpoint_dir, save_last=True, every_n_epochs=checkpoint_every_n_epochs)
    engine = Engine(
        accelerator=accelerator, devices=devices, strategy=strategy, precision=precision, max_epochs=epochs,
        max_time=max_time, callbacks=[monitor, checkpoint], default_root_dir=output_dir, logger=False,
        check_val_every_n_epoch=epochs, num_sanity_val_steps=0,
    )  # fmt: skip
    start = time.perf_counter()
    engine.fit(model, datamodule=datamodule, ckpt_path=last if last.is_file() else None)
    fit_seconds = time.perf_counter() - start
    figures: dict[str, Any] = {
        "category": category,
        "epochs_done": engine.trainer.current_epoch,
        "epochs": epochs,
        "fit_seconds_this_run": round(fit_seconds, 1),
        "train_images_per_second": round(monitor.images_per_second, 1),
    }
    flops = training_flops_per_image(reconstructive_width, discriminative_width, image_size)
    figures["train_tflop_per_image"] = round(flops / 1e12, 4)
    peak = _peak_tflops(peak_tflops)
    if peak and monitor.images_per_second:
        figures["mfu"] = round(flops * monitor.images_per_second / (peak * 1e12), 4)
    if monitor.images_per_second:
        trainer = engine.trainer
        networks = trainer.world_size * network_images_per_second(
            reconstructive_width, discriminative_width, image_size, batch_size, precision, channels_last,
            compile_networks, trainer.strategy.root_device,
        )  # fmt: skip
        figures["network_images_per_second"] = round(networks, 1)
        figures["share_outside_networks"] = round(max(0.0, 1 - monitor.images_per_second / networks), 4)
    if engine.trainer.current_epoch < epochs:
        logger.warning("Stopped after %d of %d epochs (max_time); run the same command again to continue.",
                       engine.trainer.current_epoch, epochs)
    else:
        start = time.perf_counter()
        metrics = engine.test(model, datamodule=datamodule)[0]
        figures["test_seconds"] = round(time.perf_counter() - start, 1)
        figures.update({k: round(float(v), 4) for k, v in metrics.items()})
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "reproduce.json").write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures, indent=2))  # noqa: T201
    return figures


def main() -> None:
    """Console entry point (a jsonargparse CLI over :func:`reproduce`)."""
    from jsonargparse import auto_cli  # noqa: PLC0415

    auto_cli(reproduce, as_positional=False)
