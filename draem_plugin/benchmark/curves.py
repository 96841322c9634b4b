"""Learning curves: test metrics every N epochs during training, kept in a CSV that an interrupted run resumes.

:class:`PeriodicTest` evaluates the model on the datamodule's test split after every ``every``-th training epoch. It
leaves training as it was: the model is put back in training mode, no gradient is computed, BatchNorm statistics do
not move, the learning-rate schedule is not touched, and the global random states (torch, numpy, Python) are restored
afterwards, so the run trains exactly as it would without the callback. The metrics are anomalib's (image AUROC,
pixel AUROC, pixel AP = area under the pixel precision-recall curve) computed on the model's raw scores and maps,
since anomalib's post-processor has no thresholds before validation.

Example:
    >>> from anomalib.engine import Engine
    >>> callback = PeriodicTest(every=5, csv_path=Path("curve.csv"), labels={"model": "DraemPlugin"})
    >>> Engine(callbacks=[callback])  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import csv
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.fabric.utilities.apply_func import move_data_to_device
from lightning.pytorch import Callback, LightningModule, Trainer

__all__ = ["CURVE_COLUMNS", "CURVE_METRICS", "PeriodicTest", "evaluate", "read_curve"]

#: Metrics of a learning curve, as anomalib names them, and their column names.
CURVE_METRICS = {"image_AUROC": "image_AUROC", "pixel_AUROC": "pixel_AUROC", "pixel_AUPR": "pixel_AP"}
#: Columns of ``learning_curves.csv``.
CURVE_COLUMNS = ("category", "model", "seed", "epoch", "images_seen", *CURVE_METRICS.values())


@contextlib.contextmanager
def _preserved_random_state() -> Iterator[None]:
    """Restore torch's (CPU and CUDA), numpy's and Python's global random states when the block ends."""
    numpy_state, python_state = np.random.get_state(), random.getstate()
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        try:
            yield
        finally:
            np.random.set_state(numpy_state)
            random.setstate(python_state)


def evaluate(model: LightningModule, datamodule: Any) -> dict[str, float]:
    """Anomalib's image AUROC, pixel AUROC and pixel AUPR of ``model`` on ``datamodule``'s test split, raw outputs.

    The batches go through the model's pre-processor as in ``anomalib test``, then through ``model.model`` in eval
    mode; the model's training mode and the global random states are restored afterwards.
    """
    from anomalib.metrics import AUPR, AUROC

    metrics = [
        AUROC(fields=["pred_score", "gt_label"], prefix="image_"),
        AUROC(fields=["anomaly_map", "gt_mask"], prefix="pixel_", strict=False),
        AUPR(fields=["anomaly_map", "gt_mask"], prefix="pixel_", strict=False),
    ]
    was_training = model.training
    model.eval()
    try:
        with _preserved_random_state(), torch.no_grad():
            for loaded in datamodule.test_dataloader():
                batch = move_data_to_device(loaded, model.device)
                if model.pre_processor is not None and model.pre_processor.transform is not None:
                    batch.image, batch.gt_mask = model.pre_processor.transform(batch.image, batch.gt_mask)
                output = model.model(batch.image)
                batch.pred_score, batch.anomaly_map = output.pred_score, output.anomaly_map.squeeze(1)
                for metric in metrics:
                    metric.to(model.device).update(batch)
    finally:
        model.train(was_training)
    return {metric.name: float(metric.compute()) for metric in metrics}


def read_curve(path: Path) -> list[dict[str, Any]]:
    """The rows of a learning-curve CSV (numbers as numbers), or none if it does not exist."""
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    numeric = {"seed", "epoch", "images_seen"}
    return [
        {
            key: (int(value) if key in numeric else value if key in ("category", "model") else float(value))
            for key, value in row.items()
        }
        for row in rows
    ]


class PeriodicTest(Callback):
    """Test the model every ``every`` training epochs and append the metrics to ``csv_path``.

    Args:
        every: epochs between evaluations (the last epoch is always evaluated).
        csv_path: the run's curve file; rows already there (from an interrupted run) are kept, not measured again.
        labels: ``category``, ``model`` and ``seed`` written with every row.
    """

    def __init__(self, every: int, csv_path: Path, labels: dict[str, Any]) -> None:
        if every < 1:
            msg = f"eval_every must be at least 1 epoch, got {every}."
            raise ValueError(msg)
        self.every = every
        self.csv_path = Path(csv_path)
        self.labels = labels
        self.seconds = 0.0

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Evaluate after every ``every``-th epoch and after the last one."""
        import time

        epoch = trainer.current_epoch + 1
        if epoch % self.every and epoch != trainer.max_epochs:
            return
        if any(row["epoch"] == epoch for row in read_curve(self.csv_path)):
            return
        start = time.perf_counter()
        metrics = evaluate(pl_module, trainer.datamodule)
        self.seconds += time.perf_counter() - start
        images = epoch * len(trainer.datamodule.train_data)
        row = {**self.labels, "epoch": epoch, "images_seen": images}
        row |= {column: metrics[name] for name, column in CURVE_METRICS.items()}
        new = not self.csv_path.is_file()
        self.csv_path.parent.mkdir(parents=True, exist_ok=True)
        with self.csv_path.open("a", newline="", encoding="utf-8") as file:
            writer = csv.DictWriter(file, fieldnames=CURVE_COLUMNS)
            if new:
                writer.writeheader()
            writer.writerow(row)
