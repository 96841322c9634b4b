"""``draem-bench infer``: inference throughput and per-batch latency of DraemPlugin, Draem, PatchCore and PaDiM.

Each model's torch network runs in eval mode under ``torch.inference_mode`` on the same batch of random images
already at ``image_size`` (pre-processing, post-processing and data loading are left out: they are the same
per-pixel work for every model). PatchCore's memory bank and PaDiM's Gaussians are first fitted on
``fit_images`` random images (PatchCore with its coreset subsampling). The models are timed alternately after
warm-up; ``ratio`` is DraemPlugin's images/s over the row's model's (above 1: DraemPlugin is faster).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from .memory import coreset_memory_guard
from .models import ModelName, build_model, chosen_models, count_parameters
from .settings import TimedSettings, default_texture_source, quiet
from .timing import summarise, time_alternately

__all__ = ["Infer"]


def _fit_memory_model(model: Any, images: torch.Tensor, batch_size: int) -> str:
    """Fit PatchCore / PaDiM on ``images`` through their own ``training_step`` and ``fit``; describe the result."""
    from anomalib.data import ImageBatch

    model.train()
    with coreset_memory_guard(), torch.no_grad():
        for batch in images.split(batch_size):
            model.training_step(ImageBatch(image=batch))
        model.fit()
    bank = getattr(model.model, "memory_bank", None)
    if isinstance(bank, torch.Tensor) and bank.ndim == 2:
        return f"memory bank {bank.shape[0]}x{bank.shape[1]} from {len(images)} images"
    return f"Gaussians fitted on {len(images)} images"


@dataclass
class Infer(TimedSettings):
    """Inference images/s and per-batch latency of DraemPlugin, anomalib's Draem, PatchCore and PaDiM.

    Args:
        models: Models to time (default all four: [DraemPlugin,Draem,Patchcore,Padim]).
        backbone: timm backbone of PatchCore and PaDiM (default: anomalib's, which download where there is a
            network); offline: resnet18.tv_in1k with --hf_home. PatchCore uses layer2+layer3, PaDiM layer1-3.
        padim_n_features: PaDiM's kept features (default: anomalib's for the backbone family).
        fit_images: Random images PatchCore's memory bank and PaDiM's Gaussians are fitted on.
    """

    NAME: ClassVar[str] = "infer"
    TITLE: ClassVar[str] = "infer: inference images/s and batch latency (ratio = DraemPlugin images/s / model's)"
    COLUMNS: ClassVar[tuple[str, ...]] = (
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

    models: list[ModelName] | None = None
    backbone: str | None = None
    padim_n_features: int | None = None
    fit_images: int = 16

    def measure(self) -> list[dict[str, Any]]:
        """Time inference of ``models``; one row per model."""
        names = chosen_models(self.models)
        dev = self.torch_device()
        needs_source = any(name in ("DraemPlugin", "Draem") for name in names)
        texture_source = default_texture_source(self.source) if needs_source else None
        generator = torch.Generator().manual_seed(self.seed)
        images = torch.rand(self.batch_size, 3, self.image_size, self.image_size, generator=generator).to(dev)
        networks: dict[str, torch.nn.Module] = {}
        details: dict[str, dict[str, Any]] = {}
        with quiet():
            for name in names:
                torch.manual_seed(self.seed)
                start = time.perf_counter()
                model = build_model(
                    name,
                    image_size=self.image_size,
                    reconstructive_width=self.reconstructive_width,
                    discriminative_width=self.discriminative_width,
                    source=texture_source,
                    backbone=self.backbone,
                    padim_n_features=self.padim_n_features,
                    seed=self.seed,
                    evaluator=False,
                    visualizer=False,
                ).to(dev)
                setup = time.perf_counter() - start
                if name in ("DraemPlugin", "Draem"):
                    info = f"widths {self.reconstructive_width}/{self.discriminative_width}"
                else:
                    fit_set = torch.rand(self.fit_images, 3, self.image_size, self.image_size, generator=generator).to(
                        dev
                    )
                    info = f"{model.model.backbone}; " + _fit_memory_model(model, fit_set, self.batch_size)
                model.eval()
                networks[name] = model.model.eval()
                details[name] = {"details": info, "params": count_parameters(model.model), "setup_s": setup}

            def runner(network: torch.nn.Module) -> Any:
                def run() -> Any:
                    with torch.inference_mode():
                        return network(images)

                return run

            times = time_alternately(
                {name: runner(network) for name, network in networks.items()},
                dev,
                warmup=self.warmup,
                rounds=self.rounds,
                iters=self.iters,
            )
        stats = {name: summarise(times[name], self.batch_size) for name in names}
        reference = stats["DraemPlugin"]["images_per_s"] if "DraemPlugin" in stats else float("nan")
        return [
            {
                "model": name,
                "device": dev.type,
                "batch_size": self.batch_size,
                "image_size": self.image_size,
                **stats[name],
                "ratio": reference / stats[name]["images_per_s"],
                **details[name],
            }
            for name in names
        ]
