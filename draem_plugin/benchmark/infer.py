"""``draem-bench infer``: inference throughput and per-batch latency of DraemPlugin, Draem, PatchCore and PaDiM.

Each model's torch network runs in eval mode under ``torch.inference_mode`` on the same batch of random images
already at ``image_size`` (pre-processing, post-processing and data loading are left out: they are the same
per-pixel work for every model). PatchCore's memory bank and PaDiM's Gaussians are first fitted on
``fit_images`` random images (PatchCore with its coreset subsampling). The models are timed alternately after
warm-up; ``ratio`` is DraemPlugin's images/s over the row's model's (above 1: DraemPlugin is faster).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from .common import default_texture_source, quiet, resolve_device, summarise, time_alternately
from .models import MODEL_NAMES, build_model, count_parameters

__all__ = ["COLUMNS", "run_infer"]

COLUMNS = (
    "model",
    "device",
    "batch_size",
    "image_size",
    "images_per_s",
    "latency_ms_p50",
    "latency_ms_p90",
    "ratio",
    "details",
)


def _fit_memory_model(model: Any, images: torch.Tensor, batch_size: int) -> str:  # noqa: ANN401
    """Fit PatchCore / PaDiM on ``images`` through their own ``training_step`` and ``fit``; describe the result."""
    from anomalib.data import ImageBatch  # noqa: PLC0415

    from .common import coreset_memory_guard  # noqa: PLC0415

    model.train()
    with coreset_memory_guard(), torch.no_grad():
        for batch in images.split(batch_size):
            model.training_step(ImageBatch(image=batch))
        model.fit()
    bank = getattr(model.model, "memory_bank", None)
    if isinstance(bank, torch.Tensor) and bank.ndim == 2:
        return f"memory bank {bank.shape[0]}x{bank.shape[1]} from {len(images)} images"
    return f"Gaussians fitted on {len(images)} images"


def run_infer(
    models: list[str] | None = None,
    source: str | Path | None = None,
    device: str = "cpu",
    batch_size: int = 8,
    image_size: int = 256,
    reconstructive_width: int = 128,
    discriminative_width: int = 64,
    backbone: str | None = None,
    padim_n_features: int | None = None,
    fit_images: int = 16,
    warmup: int = 2,
    rounds: int = 2,
    iters: int = 3,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Time inference of ``models``; one row per model."""
    names = list(models or MODEL_NAMES)
    unknown = [name for name in names if name not in MODEL_NAMES]
    if unknown:
        msg = f"unknown model(s) {unknown}; choose from {list(MODEL_NAMES)}."
        raise ValueError(msg)
    dev = resolve_device(device)
    needs_source = any(name in ("DraemPlugin", "Draem") for name in names)
    texture_source = default_texture_source(source) if needs_source else None
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(batch_size, 3, image_size, image_size, generator=generator).to(dev)
    networks: dict[str, torch.nn.Module] = {}
    details: dict[str, dict[str, Any]] = {}
    with quiet():
        for name in names:
            torch.manual_seed(seed)
            start = time.perf_counter()
            model = build_model(
                name,
                image_size=image_size,
                reconstructive_width=reconstructive_width,
                discriminative_width=discriminative_width,
                source=texture_source,
                backbone=backbone,
                padim_n_features=padim_n_features,
                seed=seed,
                evaluator=False,
                visualizer=False,
            ).to(dev)
            setup = time.perf_counter() - start
            if name in ("DraemPlugin", "Draem"):
                info = f"widths {reconstructive_width}/{discriminative_width}"
            else:
                fit_set = torch.rand(fit_images, 3, image_size, image_size, generator=generator).to(dev)
                info = f"{model.model.backbone}; " + _fit_memory_model(model, fit_set, batch_size)
            model.eval()
            networks[name] = model.model.eval()
            details[name] = {"details": info, "params": count_parameters(model.model), "setup_s": setup}

        def runner(network: torch.nn.Module) -> Any:  # noqa: ANN401
            def run() -> Any:  # noqa: ANN401
                with torch.inference_mode():
                    return network(images)

            return run

        times = time_alternately(
            {name: runner(network) for name, network in networks.items()},
            dev,
            warmup=warmup,
            rounds=rounds,
            iters=iters,
        )
    stats = {name: summarise(times[name], batch_size) for name in names}
    reference = stats["DraemPlugin"]["images_per_s"] if "DraemPlugin" in stats else float("nan")
    return [
        {
            "model": name,
            "device": dev.type,
            "batch_size": batch_size,
            "image_size": image_size,
            **stats[name],
            "ratio": reference / stats[name]["images_per_s"],
            **details[name],
        }
        for name in names
    ]
