"""``draem-bench``: the command line of the side-by-side benchmarks (a jsonargparse CLI).

Each subcommand prints a table and, with ``--json PATH``, writes its rows (and the machine and settings) as JSON.
Rows comparing two things carry a ``ratio`` field: DraemPlugin's figure over the other's (above 1: DraemPlugin is
faster). Examples::

    draem-bench augment --source ../shared/data/textures/dtd_lowres --batch_size [8,32] --json augment.json
    draem-bench train-step --source DIR --batch_size 8 --image_size 256 --reconstructive_width 32 \\
        --discriminative_width 16 --precision bf16-mixed --channels_last true
    draem-bench infer --source DIR --backbone resnet18.tv_in1k --hf_home ../shared/weights/hf_home
    draem-bench quality --root ../shared/data/mvtec_ad --category bottle --epochs 10 --out_dir results/quality
    draem-bench pipeline --root ../shared/data/mvtec_ad --category bottle --device cuda --precision bf16-mixed

Every subcommand takes ``--device cpu|cuda`` (CUDA timings synchronise the device around every timed call).
"""

from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path
from typing import Literal

__all__ = ["augment", "infer", "main", "pipeline", "quality", "train_step"]

Device = Literal["cpu", "cuda"]
Precision = Literal["fp32", "bf16-mixed"]
ModelName = Literal["DraemPlugin", "Draem", "Patchcore", "Padim"]


def _setup(threads: int | None, hf_home: str | None = None) -> None:
    import torch  # noqa: PLC0415

    from .common import use_hf_cache  # noqa: PLC0415

    if threads is not None:
        torch.set_num_threads(threads)
    use_hf_cache(hf_home)


def _report(
    title: str,
    rows: list[dict],
    columns: tuple[str, ...],
    settings: dict,
    json: str | None,
    device: object = None,
) -> None:
    from .common import format_table, machine_info, write_json  # noqa: PLC0415

    machine = machine_info(device)  # type: ignore[arg-type]
    print(f"\n## {title}\n")
    print(f"machine: {machine['cpu']} ({machine['cpu_count']} cores, {machine['torch_threads']} torch threads)"
          + (f", GPU {machine['gpu']}" if machine.get("gpu") else ", no GPU")
          + f"; torch {machine['torch']}, anomalib {machine.get('anomalib', '?')}")
    print("settings: " + ", ".join(f"{k}={v}" for k, v in settings.items() if v is not None) + "\n")
    print(format_table(rows, columns))
    if json is not None:
        path = write_json(json, title.split(":")[0], settings, rows)
        print(f"\nwrote {path}")


def augment(
    source: str | None = None,
    device: Device | list[Device] = "cpu",
    batch_size: int | list[int] | None = None,
    image_size: int = 256,
    warmup: int = 2,
    rounds: int = 3,
    iters: int = 3,
    seed: int = 0,
    threads: int | None = None,
    json: str | None = None,
) -> None:
    """Augmenter throughput: DraemPlugin's PerlinAnomalyAugmenter against anomalib's PerlinAnomalyGenerator.

    Args:
        source: Folder of texture images both augmenters draw from (default: ../shared/data/textures/dtd_lowres,
            else ./datasets/dtd).
        device: cpu or cuda, or a list of both (e.g. [cpu,cuda]).
        batch_size: Batch size, or a list of them (default [8,32]).
        image_size: Side of the square images (and of DraemPlugin's stored textures).
        warmup: Untimed batches per augmenter before timing.
        rounds: Alternating rounds (the order flips every round).
        iters: Timed batches per augmenter and round.
        seed: Seed of the images and of the augmenters.
        threads: torch.set_num_threads (default: torch's choice).
        json: Write the rows to this JSON file.
    """
    from .augment import COLUMNS, run_augment  # noqa: PLC0415
    from .common import as_list  # noqa: PLC0415

    _setup(threads)
    devices = as_list(device)
    sizes = as_list(batch_size) if batch_size is not None else [8, 32]
    rows = run_augment(source, devices, sizes, image_size, warmup=warmup, rounds=rounds, iters=iters, seed=seed)
    settings = {"source": rows[0]["source"] if rows else source, "device": devices, "batch_size": sizes,
                "image_size": image_size, "warmup": warmup, "rounds": rounds, "iters": iters, "seed": seed}
    _report("augment: images/s of anomaly synthesis (ratio = DraemPlugin / anomalib)", rows, COLUMNS, settings, json,
            _cuda_if(devices))


def train_step(
    source: str | None = None,
    device: Device = "cpu",
    batch_size: int = 8,
    image_size: int = 256,
    reconstructive_width: int = 128,
    discriminative_width: int = 64,
    precision: Precision = "fp32",
    channels_last: bool = False,
    warmup: int = 2,
    rounds: int = 2,
    iters: int = 3,
    seed: int = 0,
    threads: int | None = None,
    json: str | None = None,
) -> None:
    """Training images/s and peak step memory: DraemPlugin against anomalib's Draem at equal settings.

    A full step each: augmentation + forward + loss (the model's own training_step) + backward + Adam step, on the
    same random images. anomalib's Draem is rebuilt with anomalib's own sub-networks at the widths given.

    Args:
        source: Texture folder of both models' anomaly synthesis (default as for augment).
        device: cpu or cuda.
        batch_size: Images per step.
        image_size: Side of the square images.
        reconstructive_width: Base width of both reconstructive networks (original 128).
        discriminative_width: Base width of both discriminative networks (original 64).
        precision: fp32, or bf16-mixed (torch.autocast around the training step, as Lightning does).
        channels_last: Convert the models and the images to channels_last.
        warmup: Untimed steps per model before timing.
        rounds: Alternating rounds (the order flips every round).
        iters: Timed steps per model and round.
        seed: Seed of the images, the weights and the augmenters.
        threads: torch.set_num_threads (default: torch's choice).
        json: Write the rows to this JSON file.
    """
    from .train_step import COLUMNS, run_train_step  # noqa: PLC0415

    _setup(threads)
    rows = run_train_step(source, device, batch_size, image_size, reconstructive_width, discriminative_width,
                          precision, channels_last, warmup=warmup, rounds=rounds, iters=iters, seed=seed)
    settings = {"source": rows[0]["source"], "device": device, "batch_size": batch_size, "image_size": image_size,
                "reconstructive_width": reconstructive_width, "discriminative_width": discriminative_width,
                "precision": precision, "channels_last": channels_last, "warmup": warmup, "rounds": rounds,
                "iters": iters, "seed": seed}
    _report("train-step: training images/s and peak step memory (ratio = DraemPlugin / anomalib Draem)", rows,
            COLUMNS, settings, json, _cuda_if([device]))
    for row in rows:
        for key in ("anomalib_widths_note", "plugin_note", "anomalib_note"):
            if row.get(key):
                print(f"note: {row[key]}")


def infer(
    models: list[ModelName] | None = None,
    source: str | None = None,
    device: Device = "cpu",
    batch_size: int = 8,
    image_size: int = 256,
    reconstructive_width: int = 128,
    discriminative_width: int = 64,
    backbone: str | None = None,
    padim_n_features: int | None = None,
    fit_images: int = 16,
    hf_home: str | None = None,
    warmup: int = 2,
    rounds: int = 2,
    iters: int = 3,
    seed: int = 0,
    threads: int | None = None,
    json: str | None = None,
) -> None:
    """Inference images/s and per-batch latency of DraemPlugin, anomalib's Draem, PatchCore and PaDiM.

    Args:
        models: Models to time (default all four: [DraemPlugin,Draem,Patchcore,Padim]).
        source: Texture folder the DRÆMs are built with (default as for augment).
        device: cpu or cuda.
        batch_size: Images per batch.
        image_size: Side of the square images.
        reconstructive_width: Base width of both reconstructive networks (original 128).
        discriminative_width: Base width of both discriminative networks (original 64).
        backbone: timm backbone of PatchCore and PaDiM (default: anomalib's, which download where there is a
            network); offline: resnet18.tv_in1k with --hf_home. PatchCore uses layer2+layer3, PaDiM layer1-3.
        padim_n_features: PaDiM's kept features (default: anomalib's for the backbone family).
        fit_images: Random images PatchCore's memory bank and PaDiM's Gaussians are fitted on.
        hf_home: Local Hugging Face cache to load backbones from, offline (sets HF_HOME and HF_HUB_OFFLINE=1).
        warmup: Untimed batches per model before timing.
        rounds: Alternating rounds (the order flips every round).
        iters: Timed batches per model and round.
        seed: Seed of the images and the weights.
        threads: torch.set_num_threads (default: torch's choice).
        json: Write the rows to this JSON file.
    """
    from .infer import COLUMNS, run_infer  # noqa: PLC0415

    _setup(threads, hf_home)
    rows = run_infer(list(models) if models else None, source, device, batch_size, image_size, reconstructive_width,
                     discriminative_width, backbone, padim_n_features, fit_images, warmup=warmup, rounds=rounds,
                     iters=iters, seed=seed)
    settings = {"models": [row["model"] for row in rows], "source": source, "device": device,
                "batch_size": batch_size, "image_size": image_size, "reconstructive_width": reconstructive_width,
                "discriminative_width": discriminative_width, "backbone": backbone, "fit_images": fit_images,
                "warmup": warmup, "rounds": rounds, "iters": iters, "seed": seed}
    _report("infer: inference images/s and batch latency (ratio = DraemPlugin images/s / model's)", rows, COLUMNS,
            settings, json, _cuda_if([device]))


def quality(
    root: str,
    category: str | list[str] = "bottle",
    models: list[ModelName] | None = None,
    epochs: int = 10,
    image_size: int = 256,
    reconstructive_width: int = 128,
    discriminative_width: int = 64,
    source: str | None = None,
    backbone: str | None = None,
    padim_n_features: int | None = None,
    hf_home: str | None = None,
    device: Device = "cpu",
    batch_size: int = 8,
    eval_batch_size: int = 16,
    num_workers: int = 0,
    seed: int = 0,
    threads: int | None = None,
    out_dir: str = "results/draem_bench/quality",
    json: str | None = None,
) -> None:
    """Train and test the models on MVTec-layout categories; write quality.csv, quality.md and quality.png.

    Args:
        root: Dataset root in the MVTec AD layout (ROOT/CATEGORY/train/good, test/..., ground_truth/...).
        category: Category, or a list of them (e.g. [bottle,cable]).
        models: Models to train and test (default all four: [DraemPlugin,Draem,Patchcore,Padim]).
        epochs: Training epochs of the DRÆMs (PatchCore and PaDiM need one).
        image_size: Side of the square input of every model.
        reconstructive_width: Base width of both reconstructive networks (original 128).
        discriminative_width: Base width of both discriminative networks (original 64).
        source: Texture folder of both DRÆMs (default as for augment).
        backbone: timm backbone of PatchCore and PaDiM (default: anomalib's); offline: resnet18.tv_in1k.
        padim_n_features: PaDiM's kept features (default: anomalib's for the backbone family).
        hf_home: Local Hugging Face cache to load backbones from, offline (sets HF_HOME and HF_HUB_OFFLINE=1).
        device: cpu or cuda.
        batch_size: Training batch size.
        eval_batch_size: Validation and test batch size.
        num_workers: Data loader workers.
        seed: Seed of everything.
        threads: torch.set_num_threads (default: torch's choice).
        out_dir: Folder for quality.csv, quality.md and quality.png.
        json: Also write the rows to this JSON file.
    """
    from .common import as_list  # noqa: PLC0415
    from .quality import COLUMNS, run_quality, write_chart, write_csv, write_markdown  # noqa: PLC0415

    _setup(threads, hf_home)
    categories = as_list(category)
    rows = run_quality(root, categories, list(models) if models else None, epochs, image_size, reconstructive_width,
                       discriminative_width, source, backbone, padim_n_features, device, batch_size, eval_batch_size,
                       num_workers, seed)
    settings = {"root": root, "category": categories, "models": list(dict.fromkeys(r["model"] for r in rows)),
                "epochs": epochs, "image_size": image_size, "reconstructive_width": reconstructive_width,
                "discriminative_width": discriminative_width, "source": source, "backbone": backbone,
                "device": device, "batch_size": batch_size, "eval_batch_size": eval_batch_size, "seed": seed}
    out = Path(out_dir)
    header = ("Settings: " + ", ".join(f"{k}={v}" for k, v in settings.items() if v is not None)
              + ". pixel_AP = area under the pixel precision-recall curve; times in seconds on device "
              + device + ".")
    write_csv(rows, out / "quality.csv")
    write_markdown(rows, out / "quality.md", header)
    write_chart(rows, out / "quality.png", title=f"{', '.join(categories)}: DRAEM epochs {epochs}, {image_size} px")
    _report("quality: test metrics and timings", rows, COLUMNS, settings, json, _cuda_if([device]))
    print(f"wrote {out / 'quality.csv'}, {out / 'quality.md'}, {out / 'quality.png'}")


def pipeline(
    root: str | None = None,
    category: str = "brick",
    source: str | None = None,
    device: Device = "cpu",
    epochs: int = 3,
    batch_size: int = 8,
    image_size: int = 256,
    reconstructive_width: int = 128,
    discriminative_width: int = 64,
    precision: str = "32-true",
    channels_last: bool = False,
    num_workers: int = 8,
    seed: int = 0,
    threads: int | None = None,
    json: str | None = None,
) -> None:
    """Training images/s in Lightning's loop against the networks alone, with and without the device image cache.

    Args:
        root: Dataset root in the MVTec AD layout (default: the embedded SurfaceDemo, built on first use).
        category: Category under root (SurfaceDemo: brick, grass or gravel).
        source: Texture folder of the anomaly synthesis (default: procedural textures).
        device: cpu or cuda.
        epochs: Training epochs per run (the first is warm-up and not timed).
        batch_size: Training batch size.
        image_size: Side of the square input.
        reconstructive_width: Base width of the reconstructive network (original 128).
        discriminative_width: Base width of the discriminative network (original 64).
        precision: Lightning precision (32-true, bf16-mixed, 16-mixed).
        channels_last: channels_last memory format.
        num_workers: Data loader workers of the datamodule.
        seed: Seed of everything.
        threads: torch.set_num_threads (default: torch's choice).
        json: Write the rows to this JSON file.
    """
    from .pipeline import COLUMNS, run_pipeline  # noqa: PLC0415

    _setup(threads)
    rows = run_pipeline(root, category, source, device, epochs, batch_size, image_size, reconstructive_width,
                        discriminative_width, precision, channels_last, num_workers, seed)
    settings = {"root": root or "SurfaceDemo", "category": category, "source": source, "device": device,
                "epochs": epochs, "batch_size": batch_size, "image_size": image_size,
                "reconstructive_width": reconstructive_width, "discriminative_width": discriminative_width,
                "precision": precision, "channels_last": channels_last, "num_workers": num_workers, "seed": seed}
    _report("pipeline: training images/s and the share of step time outside the networks (ratio = over uncached)",
            rows, COLUMNS, settings, json, _cuda_if([device]))


def _cuda_if(devices: list[str]) -> object:
    if "cuda" in devices:
        import torch  # noqa: PLC0415

        return torch.device("cuda")
    return None


COMMANDS = {"augment": augment, "train-step": train_step, "infer": infer, "quality": quality, "pipeline": pipeline}


def main(args: list[str] | None = None) -> None:
    """Entry point of the ``draem-bench`` console script."""
    try:
        from jsonargparse import auto_cli as cli  # noqa: PLC0415
    except ImportError:  # jsonargparse < 4.32
        from jsonargparse import CLI as cli  # noqa: N811, PLC0415

    os.environ.setdefault("PYTHONWARNINGS", "ignore::FutureWarning")
    try:
        cli(COMMANDS, args=args, as_positional=False)
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    except Exception as error:  # noqa: BLE001  (print the traceback, then one clear line, and exit non-zero)
        traceback.print_exc()
        print(f"\ndraem-bench: error: {type(error).__name__}: {error}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
