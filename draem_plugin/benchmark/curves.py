"""Learning curves: test metrics every N epochs during training, kept in a CSV that an interrupted run resumes.

:class:`PeriodicTest` evaluates the model on the datamodule's test split after every ``every``-th training epoch. It
leaves training as it was: the model is put back in training mode, no gradient is computed, BatchNorm statistics do
not move, the learning-rate schedule is not touched, and the global random states (torch, numpy, Python) are restored
afterwards, so the run trains exactly as it would without the callback. The metrics are anomalib's (image AUROC,
pixel AUROC, pixel AP = area under the pixel precision-recall curve) computed on the model's raw scores and maps,
since anomalib's post-processor has no thresholds before validation. Beside them, :func:`good_train_flagged` scores the
first training images, a label-free check on training data: the share of their (normal) pixels the model calls
anomalous.

Example:
    >>> from anomalib.engine import Engine
    >>> callback = PeriodicTest(every=5, csv_path=Path("curve.csv"), labels={"model": "DraemPlugin"})
    >>> Engine(callbacks=[callback])  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import csv
import random
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.fabric.utilities.apply_func import move_data_to_device
from lightning.pytorch import Callback, LightningModule, Trainer
from torch.utils.data import DataLoader, Subset

from ..callbacks import NetworkAverage

__all__ = [
    "CURVE_COLUMNS",
    "CURVE_METRICS",
    "FLAGGED_IMAGES",
    "PeriodicTest",
    "evaluate",
    "good_train_flagged",
    "read_curve",
]

#: Metrics of a learning curve, as anomalib names them, and their column names.
CURVE_METRICS = {"image_AUROC": "image_AUROC", "pixel_AUROC": "pixel_AUROC", "pixel_AUPR": "pixel_AP"}
#: Columns of ``learning_curves.csv``.
CURVE_COLUMNS = ("category", "model", "seed", "epoch", "images_seen", *CURVE_METRICS.values(), "good_train_flagged")
#: How many training images :func:`good_train_flagged` scores (the first ones of the split).
FLAGGED_IMAGES = 32


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


@contextlib.contextmanager
def _inference(model: LightningModule) -> Iterator[None]:
    """Eval mode without gradients; the model's training mode and the global random states restored afterwards."""
    was_training = model.training
    model.eval()
    try:
        with _preserved_random_state(), torch.no_grad():
            yield
    finally:
        model.train(was_training)


def _predict(model: LightningModule, loader: Iterable[Any]) -> Iterator[Any]:
    """``loader``'s batches through the model's pre-processor and ``model.model``, raw scores and maps filled in."""
    for loaded in loader:
        batch = move_data_to_device(loaded, model.device)
        if model.pre_processor is not None and model.pre_processor.transform is not None:
            batch.image, batch.gt_mask = model.pre_processor.transform(batch.image, batch.gt_mask)
        output = model.model(batch.image)
        batch.pred_score, batch.anomaly_map = output.pred_score, output.anomaly_map.squeeze(1)
        yield batch


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
    with _inference(model):
        for batch in _predict(model, datamodule.test_dataloader()):
            for metric in metrics:
                metric.to(model.device).update(batch)
    return {metric.name: float(metric.compute()) for metric in metrics}


def good_train_flagged(model: LightningModule, dataset: Any, images: int = FLAGGED_IMAGES) -> float:
    """Share of the pixels of the first ``images`` training images (unaugmented) that ``model`` scores above 0.5.

    A label-free check on training data: the training images are all normal, so a calibrated DRÆM discriminator
    (softmax maps, the original's loss) flags almost none of their pixels; a share that jumps between evaluations
    shows a discriminator that calls normal surface anomalous, without looking at the test split.

    Args:
        model: a DRÆM Lightning module (DraemPlugin or anomalib's Draem) whose ``model.model`` returns softmax maps.
        dataset: the datamodule's training dataset (anomalib's, with its ``collate_fn``).
        images: how many of its first images to score.

    Returns:
        The share in [0, 1].

    Raises:
        ValueError: if ``images`` is below 1 or the dataset is empty.
    """
    if images < 1 or len(dataset) == 0:
        msg = f"good_train_flagged needs at least one training image, got images={images} of {len(dataset)}."
        raise ValueError(msg)
    loader = DataLoader(Subset(dataset, range(min(images, len(dataset)))), batch_size=16, collate_fn=dataset.collate_fn)
    flagged = total = 0
    with _inference(model):
        for batch in _predict(model, loader):
            flagged += int((batch.anomaly_map > 0.5).sum())
            total += batch.anomaly_map.numel()
    return flagged / total


def read_curve(path: Path) -> list[dict[str, Any]]:
    """The rows of a learning-curve CSV (numbers as numbers, empty cells NaN), or none if it does not exist."""
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    integers, text = {"seed", "epoch", "images_seen"}, {"category", "model"}
    return [
        {
            key: int(value) if key in integers else value if key in text else float(value or "nan")
            for key, value in row.items()
        }
        for row in rows
    ]


class PeriodicTest(Callback):
    """Test the model every ``every`` training epochs and append the metrics to ``csv_path``.

    Each row holds the test split's image AUROC, pixel AUROC and pixel AP, and :func:`good_train_flagged` on the
    training split.

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
        """Evaluate after every ``every``-th epoch and after the last one (the networks' average, if one is kept)."""
        import time

        epoch = trainer.current_epoch + 1
        if epoch % self.every and epoch != trainer.max_epochs:
            return
        if any(row["epoch"] == epoch for row in read_curve(self.csv_path)):
            return
        start = time.perf_counter()
        averages = [callback for callback in trainer.callbacks if isinstance(callback, NetworkAverage)]
        with averages[0].swapped_in(pl_module) if averages else contextlib.nullcontext():
            metrics = evaluate(pl_module, trainer.datamodule)
            flagged = good_train_flagged(pl_module, trainer.datamodule.train_data)
        self.seconds += time.perf_counter() - start
        images = epoch * len(trainer.datamodule.train_data)
        row = {**self.labels, "epoch": epoch, "images_seen": images}
        row |= {column: metrics[name] for name, column in CURVE_METRICS.items()}
        self._append(row | {"good_train_flagged": flagged})

    def _append(self, row: dict[str, Any]) -> None:
        """Append ``row``; a file from an older version with other columns is rewritten, its gaps left empty."""
        path = self.csv_path
        header = path.read_text(encoding="utf-8").partition("\n")[0].strip() if path.is_file() else None
        rewrite = header != ",".join(CURVE_COLUMNS)
        rows = [*read_curve(path), row] if rewrite else [row]
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w" if rewrite else "a", newline="", encoding="utf-8") as file:
            writer = csv.DictWriter(file, fieldnames=CURVE_COLUMNS)
            if rewrite:
                writer.writeheader()
            writer.writerows(rows)
