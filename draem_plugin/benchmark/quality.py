"""``draem-bench quality``: train and test DraemPlugin, anomalib's Draem, PatchCore and PaDiM on MVTec-layout data.

Every model gets the same anomalib ``Engine`` settings, the same ``MVTecAD`` datamodule (``root``, ``category``),
the same input size and the same evaluator metrics (:data:`~draem_plugin.benchmark.models.METRIC_NAMES`), so that
the columns compare. The DRÆMs train ``epochs`` epochs (PatchCore and PaDiM fit in their one epoch) and validate
once, after their last epoch (the validation set gives the post-processor its normalisation and thresholds). Writes
``quality.csv``, ``quality.md`` and ``quality.png`` (bar chart) to ``out_dir``.

With ``eval_every N`` the DRÆMs are also tested every N epochs (:class:`~draem_plugin.benchmark.curves.PeriodicTest`,
which leaves training undisturbed), and the command writes ``learning_curves.csv`` and ``learning_curves.png``, with
PaDiM and PatchCore as horizontal reference lines when they are in the run. Every (category, model, seed) run keeps
its checkpoint, curve and result under ``out_dir/runs/``: the same command after an interruption resumes each
unfinished run from its last epoch and reuses the finished ones.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from .charts import write_curve_chart, write_quality_chart
from .curves import CURVE_COLUMNS, CURVE_METRICS, PeriodicTest, evaluate, read_curve
from .memory import coreset_memory_guard
from .models import ModelName, build_evaluator, build_model, chosen_models, count_parameters
from .report import write_csv, write_markdown
from .settings import BenchSettings, default_texture_source, quiet

__all__ = ["CSV_COLUMNS", "Quality"]

logger = logging.getLogger(__name__)

#: Columns of the markdown table; the CSV has them and the ones after.
_SHOWN = (
    "model", "category", "seed", "image_AUROC", "pixel_AUROC", "pixel_AP", "pixel_AUPRO", "fit_s", "test_s",
    "test_images_per_s",
)  # fmt: skip
CSV_COLUMNS = (
    *_SHOWN, "image_F1Score", "epochs", "image_size", "train_images", "test_images", "params", "setup_s", "details",
    "dataset",
)  # fmt: skip
#: anomalib metric name -> column.
_METRIC_COLUMNS = {
    "image_AUROC": "image_AUROC",
    "pixel_AUROC": "pixel_AUROC",
    "pixel_AUPR": "pixel_AP",
    "pixel_AUPRO": "pixel_AUPRO",
}
_TRAINED = ("DraemPlugin", "Draem")


@dataclass
class Quality(BenchSettings):
    """Train and test the models on MVTec-layout categories; write quality.csv, quality.md and quality.png.

    Args:
        root: Dataset root in the MVTec AD layout (ROOT/CATEGORY/train/good, test/..., ground_truth/...).
        category: Category, or a list of them (e.g. [bottle,cable]).
        models: Models to train and test (default all four: [DraemPlugin,Draem,Patchcore,Padim]).
        epochs: Training epochs of the DRÆMs (PatchCore and PaDiM need one).
        eval_every: Also test the DRÆMs every N epochs and write learning_curves.csv and learning_curves.png.
        seed: Seed of everything, or a list of seeds (one run of every model per seed).
        image_size: Input size of every model: one side, or [height, width] (e.g. [320,128] keeps KolektorSDD's
            aspect ratio).
        plugin_args: More DraemPlugin arguments, e.g. {lr: 0.0004, score_filter_size: 11} (anomalib's Draem keeps
            its own; they are recorded with the results).
        backbone: timm backbone of PatchCore and PaDiM (default: anomalib's); offline: resnet18.tv_in1k.
        padim_n_features: PaDiM's kept features (default: anomalib's for the backbone family).
        eval_batch_size: Validation and test batch size.
        num_workers: Data loader workers.
        out_dir: Folder for the tables, charts and the runs (checkpoints, curves) that resume.
    """

    NAME: ClassVar[str] = "quality"
    TITLE: ClassVar[str] = "quality: test metrics and timings"
    COLUMNS: ClassVar[tuple[str, ...]] = _SHOWN

    root: str = "../shared/data/mvtec_ad"
    category: str | list[str] = "bottle"
    models: list[ModelName] | None = None
    epochs: int = 10
    eval_every: int | None = None
    seed: int | list[int] = 0
    plugin_args: dict[str, Any] | None = None
    backbone: str | None = None
    padim_n_features: int | None = None
    image_size: int | list[int] = 256
    eval_batch_size: int = 16
    num_workers: int = 0
    out_dir: str = "results/draem_bench/quality"

    def measure(self) -> list[dict[str, Any]]:
        """Fit and test every model on every category for every seed; one row each. Also writes the files."""
        names = chosen_models(self.models)
        if self.epochs < 1:
            msg = f"epochs must be at least 1, got {self.epochs}."
            raise ValueError(msg)
        categories = self.category if isinstance(self.category, list) else [self.category]
        seeds = self.seed if isinstance(self.seed, list) else [self.seed]
        for category in categories:
            if not (Path(self.root) / category).is_dir():
                msg = f"category folder {Path(self.root) / category} does not exist (expected the MVTec AD layout)."
                raise FileNotFoundError(msg)
        source = default_texture_source(self.source) if any(n in _TRAINED for n in names) else None
        out = Path(self.out_dir)
        rows = []
        for category in categories:
            for seed in seeds:
                for name in names:
                    if name not in _TRAINED and seed != seeds[0]:
                        continue  # PatchCore and PaDiM do not depend on the seed's anomalies or initialisation
                    rows.append(self._run(name, category, seed, source, out / "runs" / category / name / f"seed{seed}"))
        self._write(rows, out, categories)
        return rows

    def _run(self, name: str, category: str, seed: int, source: Path | None, run_dir: Path) -> dict[str, Any]:
        """One (model, category, seed) run: reuse its result, or train (resuming from its last checkpoint) and test."""
        result = run_dir / "result.json"
        self._claim(run_dir, name)
        if result.is_file():
            logger.info("quality: reusing the finished run %s", run_dir)
            return json.loads(result.read_text(encoding="utf-8"))
        import torch
        from anomalib.callbacks.checkpoint import ModelCheckpoint
        from anomalib.data import MVTecAD
        from anomalib.engine import Engine
        from lightning.pytorch import seed_everything

        seed_everything(seed, verbose=False)
        device = self.torch_device()
        with quiet():
            start = time.perf_counter()
            model = build_model(
                name,
                image_size=tuple(self.image_size) if isinstance(self.image_size, list) else self.image_size,
                reconstructive_width=self.reconstructive_width,
                discriminative_width=self.discriminative_width,
                source=source,
                backbone=self.backbone,
                padim_n_features=self.padim_n_features,
                seed=seed,
                plugin_args=self.plugin_args,
                evaluator=build_evaluator(),
                visualizer=False,
            )
            setup = time.perf_counter() - start
            datamodule = MVTecAD(
                root=self.root,
                category=category,
                train_batch_size=self.batch_size,
                eval_batch_size=self.eval_batch_size,
                num_workers=self.num_workers,
                seed=seed,
            )
            epochs = model.trainer_arguments.get("max_epochs", self.epochs)
            callbacks: list[Any] = []
            curve = None
            last = run_dir / "checkpoints" / "last.ckpt"
            if name in _TRAINED:
                # every epoch, whatever the validation schedule: an interrupted run resumes from its last epoch
                save = ModelCheckpoint(
                    dirpath=last.parent, save_last=True, every_n_epochs=1, save_on_train_epoch_end=True
                )
                callbacks.append(save)
                if self.eval_every:
                    labels = {"category": category, "model": name, "seed": seed}
                    curve = PeriodicTest(self.eval_every, run_dir / "curve.csv", labels)
                    callbacks.append(curve)
            engine = Engine(
                accelerator="gpu" if device.type == "cuda" else "cpu",
                devices=1,
                max_epochs=self.epochs,
                precision=self.precision,
                check_val_every_n_epoch=epochs,
                num_sanity_val_steps=0,
                logger=False,
                enable_progress_bar=False,
                enable_model_summary=False,
                callbacks=callbacks,
                default_root_dir=run_dir,
            )
            guard = coreset_memory_guard() if name not in _TRAINED else contextlib.nullcontext()
            start = time.perf_counter()
            with guard:
                engine.fit(model=model, datamodule=datamodule, ckpt_path=last if last.is_file() else None)
            fit_s = time.perf_counter() - start - (curve.seconds if curve is not None else 0.0)
            start = time.perf_counter()
            results = engine.test(model=model, datamodule=datamodule, verbose=False)
            test_s = time.perf_counter() - start
        metrics = results[0] if results else {}
        test_images = len(datamodule.test_data)
        row: dict[str, Any] = {"model": name, "category": category, "seed": seed}
        row |= {column: float(metrics.get(metric, float("nan"))) for metric, column in _METRIC_COLUMNS.items()}
        row |= {
            "fit_s": fit_s,
            "test_s": test_s,
            "test_images_per_s": test_images / test_s,
            "image_F1Score": float(metrics.get("image_F1Score", float("nan"))),
            "epochs": epochs,
            "image_size": self.image_size,
            "train_images": len(datamodule.train_data),
            "test_images": test_images,
            "params": count_parameters(model.model),
            "setup_s": setup,
            "details": (
                f"widths {self.reconstructive_width}/{self.discriminative_width}"
                if name in _TRAINED
                else f"backbone {model.model.backbone}"
            ),
            "dataset": str(self.root),
        }
        if self.eval_every and name not in _TRAINED:  # the reference lines of the learning curves, measured alike
            row["raw"] = {CURVE_METRICS[k]: v for k, v in evaluate(model, datamodule).items()}
        logger.info("quality %s", row)
        run_dir.mkdir(parents=True, exist_ok=True)
        result.write_text(json.dumps(row, indent=2), encoding="utf-8")
        if device.type == "cuda":
            torch.cuda.empty_cache()
        return row

    def _claim(self, run_dir: Path, name: str) -> None:
        """Record the settings a run depends on; refuse to resume or reuse a run made with other settings."""
        keys = ["image_size", "batch_size", "precision", "seed", "device"]
        if name in _TRAINED:
            keys += ["epochs", "eval_every", "reconstructive_width", "discriminative_width", "source", "plugin_args"]
        else:
            keys += ["backbone", "padim_n_features"]
        wanted = {key: self.settings()[key] for key in keys if key != "seed"}
        path = run_dir / "settings.json"
        if path.is_file():
            saved = json.loads(path.read_text(encoding="utf-8"))
            changed = {key: (saved.get(key), value) for key, value in wanted.items() if saved.get(key) != value}
            if changed:
                details = ", ".join(f"{key} {old!r} -> {new!r}" for key, (old, new) in changed.items())
                msg = (
                    f"{run_dir} holds a run made with other settings ({details}); pass another --out_dir, or delete "
                    "that folder to start the run again."
                )
                raise ValueError(msg)
            return
        run_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(wanted, indent=2), encoding="utf-8")

    def _write(self, rows: list[dict[str, Any]], out: Path, categories: list[str]) -> None:
        """quality.csv, quality.md, quality.png and, with ``eval_every``, the learning curves."""
        settings = {k: v for k, v in self.settings().items() if v is not None and k not in ("json", "threads")}
        header = (
            "Settings: "
            + ", ".join(f"{k}={v}" for k, v in settings.items())
            + ". pixel_AP = area under the pixel precision-recall curve; times in seconds on device "
            + self.device
            + "."
        )
        write_csv(rows, CSV_COLUMNS, out / "quality.csv")
        write_markdown(rows, self.COLUMNS, out / "quality.md", header)
        title = f"{', '.join(categories)}: DRAEM epochs {self.epochs}, {self.image_size} px"
        write_quality_chart(rows, out / "quality.png", title=title)
        written = [out / "quality.csv", out / "quality.md", out / "quality.png"]
        if self.eval_every:
            curves = [r for p in sorted((out / "runs").rglob("curve.csv")) for r in read_curve(p)]
            wanted = {(r["category"], r["model"], r["seed"]) for r in rows}
            curves = [r for r in curves if (r["category"], r["model"], r["seed"]) in wanted]
            write_csv(curves, CURVE_COLUMNS, out / "learning_curves.csv")
            references = [{"category": r["category"], "model": r["model"], **r["raw"]} for r in rows if "raw" in r]
            write_curve_chart(curves, references, out / "learning_curves.png")
            written += [out / "learning_curves.csv", out / "learning_curves.png"]
        print("wrote " + ", ".join(map(str, written)))
