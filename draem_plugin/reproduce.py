r"""``draem-reproduce``: the whole DRÆM reproduction on one MVTec-layout category in one command.

Trains DraemPlugin with the original recipe (700 epochs, batch 8, 256x256, Adam 1e-4, x0.2 at 80 % / 90 %, fp32)
through anomalib's Engine and ``MVTecAD`` datamodule, tests it, and prints training images/s, model FLOP utilisation,
wall time, anomalib's image AUROC, pixel AUROC, pixel AP and pixel AUPRO, and the same metrics as the original
``test_DRAEM.py`` computes them (``original_*``). Runs are resumable: with ``max_time`` the run stops cleanly and the
next identical command continues from ``<output_dir>/checkpoints/last.ckpt``. With ``--original_weights DIR`` it
trains nothing: it imports the authors' released weights and evaluates every category that has them.

Training images/s and MFU come from Lightning's ``ThroughputMonitor`` (:mod:`draem_plugin.throughput`), over the last
window of training batches; the share of step time outside the networks (data, anomaly synthesis, Lightning's loop)
is ``1 - train images/s / network images/s``, the latter timed on the networks alone after training.

Example:
    draem-reproduce --root ../shared/data/mvtec_ad --category bottle \\
        --anomaly_source_path ../shared/data/textures/dtd_lowres
    draem-reproduce --root /data/mvtec --original_weights checkpoints/DRAEM_checkpoints   # the released weights
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path
from typing import Any

from anomalib.callbacks.checkpoint import ModelCheckpoint
from lightning.pytorch import seed_everything
from lightning.pytorch.loggers import CSVLogger

from .lightning_model import DraemPlugin
from .throughput import (
    TRAIN_IMAGES_PER_SECOND,
    network_images_per_second,
    peak_flops,
    throughput_monitor,
    training_flops_per_image,
)

__all__ = ["fit_and_measure", "main", "reproduce"]

logger = logging.getLogger(__name__)

#: Batches over which Lightning's ThroughputMonitor averages.
WINDOW = 100


def fit_and_measure(
    model: DraemPlugin,
    datamodule: Any,
    output_dir: Path,
    peak_tflops: float | None = None,
    ckpt_path: Path | None = None,
    **engine_args: Any,
) -> tuple[Any, dict[str, Any]]:
    """Fit ``model`` through anomalib's ``Engine`` and measure how fast it trained.

    Args:
        model: the model to train.
        datamodule: an anomalib datamodule.
        output_dir: where Lightning's metrics (``logs/``) and the engine's results go.
        peak_tflops: the accelerator's peak for MFU (default: Lightning's figure for known GPUs at the precision).
        ckpt_path: a checkpoint to resume from.
        engine_args: more ``Engine`` (trainer) arguments, e.g. ``max_epochs``, ``precision``, ``callbacks``.

    Returns:
        The engine, and the figures: training images/s (Lightning's ThroughputMonitor, last window), TFLOP per
        training image, MFU where the peak is known, images/s of the networks alone and the share outside them.
    """
    from anomalib.engine import Engine

    hparams = model.hparams
    widths = (hparams.reconstructive_width, hparams.discriminative_width)
    image_size = hparams.image_size
    datamodule.setup("fit")
    batch_size = datamodule.train_batch_size
    steps_per_epoch = max(1, math.ceil(len(datamodule.train_data) / batch_size))
    epochs = engine_args.get("max_epochs") or 1
    flops = training_flops_per_image(*widths, image_size)
    model.flops_per_batch = flops * batch_size  # read by Lightning's ThroughputMonitor for its MFU
    window = max(2, min(WINDOW, steps_per_epoch * max(1, epochs - 1)))
    callbacks = [throughput_monitor(window), *engine_args.pop("callbacks", [])]
    engine = Engine(
        callbacks=callbacks,
        logger=CSVLogger(output_dir, name="logs"),
        log_every_n_steps=min(50, steps_per_epoch),
        default_root_dir=output_dir,
        **engine_args,
    )
    start = time.perf_counter()
    engine.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
    trainer = engine.trainer
    logged = trainer.logged_metrics
    images_per_second = float(logged.get(TRAIN_IMAGES_PER_SECOND, 0.0)) * trainer.world_size
    figures: dict[str, Any] = {
        "epochs_done": trainer.current_epoch,
        "fit_seconds_this_run": round(time.perf_counter() - start, 1),
        "train_images_per_second": round(images_per_second, 1),
        "train_tflop_per_image": round(flops / 1e12, 4),
    }
    precision = str(trainer.precision)
    peak = peak_tflops * 1e12 if peak_tflops is not None else peak_flops(trainer.strategy.root_device, precision)
    if peak and images_per_second:
        figures["mfu"] = round(flops * images_per_second / (peak * trainer.world_size), 4)
    if images_per_second:
        networks = trainer.world_size * network_images_per_second(
            *widths,
            image_size,
            batch_size,
            precision,
            hparams.channels_last,
            hparams.compile_networks,
            trainer.strategy.root_device,
        )
        figures["network_images_per_second"] = round(networks, 1)
        share = 1 - images_per_second / networks
        if share < 0:
            logger.warning(
                "Training ran at %.1f images/s, faster than the %.1f images/s measured for the networks alone, "
                "so share_outside_networks is reported as 0; the two timings are noisy at this size, "
                "time a longer run for a meaningful share.",
                images_per_second,
                networks,
            )
        figures["share_outside_networks"] = round(max(0.0, share), 4)
    return engine, figures


def reproduce(
    root: Path,
    category: str | None = None,
    anomaly_source_path: Path | None = None,
    epochs: int = 700,
    batch_size: int = 8,
    image_size: int = 256,
    reconstructive_width: int = 128,
    discriminative_width: int = 64,
    precision: str = "32-true",
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
    original_weights: Path | None = None,
    output_dir: Path = Path("results/reproduce"),
) -> dict[str, Any] | list[dict[str, Any]]:
    """Train and test DraemPlugin on ``root/category``, or evaluate the released weights; print and save the figures.

    Both report anomalib's metrics and the metrics as the original ``test_DRAEM.py`` computes them
    (``original_*``, :mod:`draem_plugin.protocol`).

    Args:
        root: folder holding MVTec-layout categories (``root/category/train/good`` ...).
        category: category to reproduce (default ``bottle``); with ``original_weights``, one category, or ``None`` for
            every category of ``root`` that has weights.
        anomaly_source_path: texture folder (the DTD ``images`` folder in the paper).
        epochs: training epochs (original: 700).
        batch_size: training batch size (original: 8).
        image_size: square input size (original: 256).
        reconstructive_width: base width of the auto-encoder (original: 128).
        discriminative_width: base width of the U-Net (original: 64).
        precision: Lightning precision: ``32-true`` as the original trains, or ``bf16-mixed`` (faster on GPUs).
        channels_last: channels-last memory format.
        compile_networks: train through ``torch.compile``.
        accelerator: Lightning accelerator.
        devices: devices per node (several GPUs use DDP).
        strategy: Lightning strategy (``auto`` picks DDP for several devices).
        num_workers: data-loader workers.
        max_time: stop training after ``DD:HH:MM:SS`` and save ``last.ckpt``; rerun the command to continue.
        checkpoint_every_n_epochs: how often ``last.ckpt`` is refreshed.
        peak_tflops: accelerator peak for MFU (default: Lightning's figure for known GPUs at the precision).
        seed: seed of the weights, the augmentation and the shuffling.
        original_weights: folder of the authors' released weights (``<run>_<category>_.pckl`` and
            ``<run>_<category>__seg.pckl``): evaluate them instead of training, beside the paper's numbers.
        output_dir: where checkpoints, logs, images and ``reproduce.json`` go.
    """
    if original_weights is not None:
        return evaluate_original_weights(
            root, original_weights, category, image_size, accelerator, num_workers, output_dir
        )
    from anomalib.data import MVTecAD

    category = category or "bottle"
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
        original_protocol=True,
    )
    datamodule = MVTecAD(
        root=root, category=category, train_batch_size=batch_size, eval_batch_size=32, num_workers=num_workers
    )
    checkpoint = ModelCheckpoint(dirpath=checkpoint_dir, save_last=True, every_n_epochs=checkpoint_every_n_epochs)
    engine, figures = fit_and_measure(
        model,
        datamodule,
        output_dir,
        peak_tflops,
        ckpt_path=last if last.is_file() else None,
        accelerator=accelerator,
        devices=devices,
        strategy=strategy,
        precision=precision,
        max_epochs=epochs,
        max_time=max_time,
        callbacks=[checkpoint],
        check_val_every_n_epoch=epochs,
        num_sanity_val_steps=0,
    )
    figures = {"category": category, "epochs": epochs, "precision": precision, **figures}
    if figures["epochs_done"] < epochs:
        logger.warning(
            "Stopped after %d of %d epochs (max_time); run the same command again to continue.",
            figures["epochs_done"],
            epochs,
        )
    else:
        start = time.perf_counter()
        metrics = engine.test(model, datamodule=datamodule)[0]
        figures["test_seconds"] = round(time.perf_counter() - start, 1)
        figures.update({k: round(float(v), 4) for k, v in metrics.items()})
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "reproduce.json").write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures, indent=2))
    return figures


#: Columns of the released-weights table: ours as the original evaluates, the paper's, anomalib's, seconds.
ORIGINAL_COLUMNS = (
    "category",
    "image_AUROC",
    "paper_image_AUROC",
    "pixel_AUROC",
    "paper_pixel_AUROC",
    "pixel_AP",
    "paper_pixel_AP",
    "anomalib_image_AUROC",
    "anomalib_pixel_AUROC",
    "test_images",
    "seconds",
)


def evaluate_original_weights(
    root: Path,
    weights: Path,
    category: str | None = None,
    image_size: int = 256,
    accelerator: str = "auto",
    num_workers: int = 8,
    output_dir: Path = Path("results/reproduce"),
) -> list[dict[str, Any]]:
    """Import every released pair under ``weights`` and test it on its category of ``root``; a table beside the paper.

    Inference only (it runs on a CPU too). The metrics are in percent, as the paper's; ``seconds`` is the wall time
    of each category's import and test (``test_images`` images).
    """
    from anomalib.data import MVTecAD
    from anomalib.engine import Engine

    from .benchmark.report import format_table
    from .original_weights import find_original_pairs
    from .protocol import PAPER_RESULTS

    categories = [category] if category else sorted(path.name for path in Path(root).iterdir() if path.is_dir())
    pairs = find_original_pairs(weights, categories)
    if not pairs:
        msg = (
            f"no released weights for {', '.join(categories)} under {weights} (expected <run>_<category>_.pckl and "
            "<run>_<category>__seg.pckl pairs)."
        )
        raise FileNotFoundError(msg)
    rows = []
    for name, (reconstructive, discriminative) in pairs.items():
        start = time.perf_counter()
        model = DraemPlugin.from_original(reconstructive, discriminative, image_size=image_size, original_protocol=True)
        datamodule = MVTecAD(root=root, category=name, eval_batch_size=8, num_workers=num_workers)
        engine = Engine(accelerator=accelerator, devices=1, logger=False, default_root_dir=Path(output_dir) / name)
        metrics = engine.test(model, datamodule=datamodule, verbose=False)[0]
        paper = PAPER_RESULTS.get(name, (float("nan"),) * 3)
        rows.append(
            {
                "category": name,
                "image_AUROC": 100 * metrics["original_image_AUROC"],
                "paper_image_AUROC": paper[0],
                "pixel_AUROC": 100 * metrics.get("original_pixel_AUROC", float("nan")),
                "paper_pixel_AUROC": paper[1],
                "pixel_AP": 100 * metrics.get("original_pixel_AP", float("nan")),
                "paper_pixel_AP": paper[2],
                "anomalib_image_AUROC": 100 * metrics["image_AUROC"],
                "anomalib_pixel_AUROC": 100 * metrics.get("pixel_AUROC", float("nan")),
                "test_images": len(datamodule.test_data),
                "seconds": time.perf_counter() - start,
            }
        )
    table = format_table(rows, ORIGINAL_COLUMNS)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "original_weights.md").write_text(table + "\n")
    (output_dir / "original_weights.json").write_text(json.dumps(rows, indent=2))
    print(table)
    return rows


def main() -> None:
    """Console entry point (a jsonargparse CLI over :func:`reproduce`)."""
    from jsonargparse import auto_cli

    auto_cli(reproduce, as_positional=False)
