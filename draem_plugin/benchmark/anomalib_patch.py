"""Targeted fixes to anomalib 2.7's benchmark pipeline (``anomalib benchmark``), applied by :func:`apply`.

The module is longer than the others (about 350 lines) because its four replacements must stay together: they are
applied and removed as one, and the job class and the job generator share the record of failed jobs.

anomalib 2.7's pipeline has three problems that stop a grid of DraemPlugin, Patchcore and Padim from working:

1. ``BenchmarkJob.collect`` builds its table from the keys of the *first* result row only, so it raises
   ``KeyError`` as soon as rows differ: one model configured with ``init_args`` and one without, models with
   different ``init_args``, or models with different default metrics. The results are then lost.
   **Fix:** collect the union of the keys (first-seen order); a value a row lacks is left empty.
2. ``Pipeline.run`` catches every exception of a runner, prints one line and returns, so ``anomalib benchmark``
   exits 0 when a job failed, when no job ran, or when the results could not be saved; a model that fails to build
   stops the whole grid.
   **Fix:** a job that fails to build or to run is recorded and the others still run; the partial results are
   saved; then :class:`BenchmarkError` is raised with one line per failed job (the command exits 1).
3. Jobs train with Lightning's defaults (``max_epochs=1000`` for a model such as DRÆM that sets none).
   **Fix (opt-in):** an optional ``trainer:`` mapping under ``benchmark:`` is passed to every job's ``Engine``
   (e.g. ``max_epochs``; a model's own ``trainer_arguments``, such as Patchcore's one epoch, still win, and
   ``check_val_every_n_epoch`` is lowered to a model's own epoch count so that it validates once), and an
   optional ``metrics:`` list gives every model the same test metrics (names as in
   :data:`draem_plugin.benchmark.models.METRIC_NAMES`, plus ``pixel_F1Score``), so that the columns compare,
   and an optional ``image_size:`` (an int or ``[height, width]``) gives every model its default pre-processor at
   that size (``Model.configure_pre_processor(image_size=...)``), so that all see the same input size.

Also, the saved CSV's path is printed (anomalib logs it only to ``runs/pipeline.log``), and memory-bank models
(PatchCore, PaDiM) fit under :func:`draem_plugin.benchmark.memory.coreset_memory_guard`: with glibc's dynamic mmap
threshold, PatchCore's coreset selection was seen to grow the RSS without bound on this project's machines.

Nothing changes for configs that do not use the new keys and whose jobs all succeed, except that rows may now
differ in keys. Nothing outside the benchmark pipeline changes at all. Importing ``draem_plugin`` does not apply
these fixes: the plugin's ``.pth`` hook calls :func:`apply` once anomalib's benchmark pipeline module has been
loaded (the ``anomalib`` command loads it for its ``benchmark`` subcommand). :func:`apply` is idempotent;
:func:`remove` undoes it.

Example:
    >>> from draem_plugin.benchmark import anomalib_patch
    >>> anomalib_patch.apply()
    True
    >>> from anomalib.pipelines.benchmark.job import BenchmarkJob
    >>> list(BenchmarkJob.collect([{"a": 1}, {"a": 2, "b": 3}]).columns)
    ['a', 'b']
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Generator
from datetime import datetime
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

__all__ = ["BenchmarkError", "apply", "is_applied", "remove"]

logger = logging.getLogger(__name__)

_MARK = "_draem_plugin_patched"
_originals: dict[str, Any] = {}
#: Failed jobs of the current ``Benchmark.run``: ``(job description, error text)``.
_failures: list[tuple[str, str]] = []
_saved: list[Path] = []


class BenchmarkError(RuntimeError):
    """One or more benchmark jobs (or a whole runner) failed."""


def _describe(config: dict) -> str:
    """``Model on Data(category)`` for a job's nested config."""
    model = config.get("model", "?")
    model = model.get("class_path", "?") if isinstance(model, dict) else model
    data = config.get("data", "?")
    if isinstance(data, dict):
        init = data.get("init_args") or {}
        detail = init.get("category") or init.get("name") or ""
        data = f"{data.get('class_path', '?')}({detail})" if detail else data.get("class_path", "?")
    return f"{model} on {data}"


def _error_text(error: BaseException) -> str:
    """The innermost cause of ``error`` (anomalib wraps job errors in ``LoggerRedirectError``), as ``Type: msg``."""
    while error.__cause__ is not None:
        error = error.__cause__
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}".rstrip(": ")


# --------------------------------------------------------------------------------------------------
# Replacements
# --------------------------------------------------------------------------------------------------
def _collect(results: list[dict[str, Any]]) -> Any:
    """``BenchmarkJob.collect``: one row per result, columns = union of the keys in first-seen order."""
    import pandas as pd

    columns: dict[str, None] = {}
    for result in results:
        columns.update(dict.fromkeys(result))
    rows = [{key: result.get(key) for key in columns} for result in results]
    return pd.DataFrame(rows, columns=list(columns), dtype=object)  # object: an int column with gaps stays int


def _print_summary(result: Any) -> None:
    """Print the model, data, metric and duration columns (anomalib's table of every column is unreadable)."""
    from .report import format_table

    if result is None or not len(result):
        return
    names = ("model.class_path", "data.class_path", "data.init_args.category", "image_size")
    identity = [c for c in result.columns if c in names]
    metrics = [c for c in result.columns if c.startswith(("image_", "pixel_")) and c not in names]
    durations = [c for c in ("fit_duration", "test_duration") if c in result.columns]
    columns = identity + metrics + durations
    rows = [{c: (None if _missing(v) else v) for c, v in row.items()} for row in result[columns].to_dict("records")]
    print("\nbenchmark results\n" + format_table(rows, columns, markdown=False) + "\n")


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _save(result: Any) -> None:
    """``BenchmarkJob.save``: as anomalib's (table, then ``runs/benchmark/<time>/results.csv``), printing the path."""
    from anomalib.pipelines.benchmark.job import BenchmarkJob

    _print_summary(result)
    file_path = Path("runs") / BenchmarkJob.name / datetime.now().strftime("%Y-%m-%d-%H_%M_%S") / "results.csv"
    file_path.parent.mkdir(parents=True, exist_ok=True)
    result.to_csv(file_path, index=False)
    _saved.append(file_path)
    logger.info("Saved results to %s", file_path)
    print(f"Saved benchmark results ({len(result)} row(s)) to {file_path}")


def _fit_guard(model: Any) -> Any:
    """:func:`~draem_plugin.benchmark.memory.coreset_memory_guard` for memory-bank models, else a no-op."""
    import contextlib

    from anomalib.models.components import MemoryBankMixin

    from .memory import coreset_memory_guard

    return coreset_memory_guard() if isinstance(model, MemoryBankMixin) else contextlib.nullcontext()


def _job_class() -> type:
    """A ``BenchmarkJob`` subclass whose ``run`` passes ``trainer`` settings to the ``Engine`` and records errors."""
    from anomalib.engine import Engine
    from anomalib.pipelines.benchmark.job import BenchmarkJob
    from anomalib.utils.logging import hide_output
    from lightning import seed_everything

    class ConfiguredBenchmarkJob(BenchmarkJob):
        """anomalib's ``BenchmarkJob`` with extra ``Engine`` (trainer) arguments; same results."""

        def __init__(
            self,
            *args: Any,
            trainer: dict | None = None,
            description: str = "",
            **kwargs: Any,
        ) -> None:
            super().__init__(*args, **kwargs)
            self.trainer = dict(trainer or {})
            self.description = description
            # A model that fixes its own (fewer) epochs, e.g. Patchcore's one, must still validate once at its end:
            # the validation set gives the post-processor its normalisation and thresholds.
            epochs = self.model.trainer_arguments.get("max_epochs", self.trainer.get("max_epochs"))
            every = self.trainer.get("check_val_every_n_epoch")
            if isinstance(epochs, int) and isinstance(every, int) and 0 < epochs < every:
                self.trainer["check_val_every_n_epoch"] = epochs

        def run(self, task_id: int | None = None) -> dict[str, Any]:
            try:
                return self._run(task_id)
            except Exception as error:
                _failures.append((self.description, _error_text(error)))
                raise

        @hide_output
        def _run(self, task_id: int | None = None) -> dict[str, Any]:
            # Same steps and result keys as anomalib 2.7's BenchmarkJob.run, plus the trainer arguments.
            job_start_time = time.time()
            devices: str | list[int] = "auto"
            if task_id is not None:
                devices = [task_id]
                logger.info("Running job %s with device %s", self.model.__class__.__name__, task_id)
            with TemporaryDirectory() as temp_dir:
                seed_everything(self.seed)
                engine = Engine(
                    accelerator=self.accelerator,
                    devices=devices,
                    default_root_dir=temp_dir,
                    **self.trainer,
                )
                fit_start_time = time.time()
                with _fit_guard(self.model):
                    engine.fit(self.model, self.datamodule)
                test_start_time = time.time()
                test_results = engine.test(self.model, self.datamodule)
            job_end_time = time.time()
            output = {
                "accelerator": self.accelerator,
                "job_duration": job_end_time - job_start_time,
                "fit_duration": test_start_time - fit_start_time,
                "test_duration": job_end_time - test_start_time,
                **self.flat_cfg,
                **test_results[0],
            }
            logger.info("Completed with result %s", output)
            return output

    return ConfiguredBenchmarkJob


def _generate_jobs(self: Any, args: dict, previous_stage_result: Any) -> Generator[Any, None, None]:
    """``BenchmarkJobGenerator.generate_jobs``, reading ``trainer``, ``metrics`` and ``image_size`` too.

    A job that fails to build is recorded and skipped instead of ending the grid.
    """
    from anomalib.data import get_datamodule
    from anomalib.models import get_model
    from anomalib.pipelines.components.utils import get_iterator_from_grid_dict
    from anomalib.utils.config import flatten_dict

    del previous_stage_result
    job_class = _job_class()
    for container in get_iterator_from_grid_dict(args):
        description = _describe(container)
        try:
            model = get_model(container["model"])
            image_size = container.get("image_size")
            if image_size is not None:
                size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
                model.pre_processor = model.configure_pre_processor(image_size=size)
            metrics = container.get("metrics")
            if metrics:
                from .models import build_evaluator

                model.evaluator = build_evaluator(list(metrics))
            datamodule = get_datamodule(container["data"])
            job = job_class(
                accelerator=self.accelerator,
                seed=container["seed"],
                model=model,
                datamodule=datamodule,
                flat_cfg=flatten_dict(container),
                trainer=container.get("trainer"),
                description=description,
            )
        except Exception as error:
            logger.exception("Could not build the benchmark job %s.", description)
            _failures.append((description, "could not build the job: " + _error_text(error)))
            continue
        yield job


def _run(self: Any, args: Any = None) -> None:
    """``Benchmark.run``: as anomalib's ``Pipeline.run``, but failures end in :class:`BenchmarkError`."""
    from anomalib.pipelines.components.base import pipeline as base
    from anomalib.utils.logging import redirect_logs

    _failures.clear()
    _saved.clear()
    pipeline_args = self._get_args(args)
    runners = self._setup_runners(pipeline_args)
    redirect_logs(base.log_file)
    previous_results = None
    runner_errors: list[str] = []
    for runner in runners:
        name = runner.generator.job_class.name
        before = len(_failures)
        try:
            job_args = pipeline_args.get(name)
            if not job_args:
                msg = f"the config has no '{name}:' section (expected {name}: seed, model, data)."
                raise BenchmarkError(msg)
            previous_results = runner.run(job_args, previous_results)
        except Exception as error:
            logger.exception("An error occurred when running the runner.")
            if len(_failures) == before or not type(error).__name__.endswith("ExecutionError"):
                runner_errors.append(
                    f"{runner.__class__.__name__} ({getattr(runner.generator, 'accelerator', '?')}): "
                    + _error_text(error)
                )
    if _failures or runner_errors:
        lines = [f"  - {job}: {error}" for job, error in _failures] + [f"  - {text}" for text in runner_errors]
        saved = f" Partial results: {', '.join(map(str, _saved))}." if _saved else " No results were saved."
        msg = (
            f"anomalib benchmark failed: {len(_failures)} job(s) and {len(runner_errors)} runner(s) failed:\n"
            + "\n".join(lines)
            + f"\n{saved.strip()} Full tracebacks: {base.log_file}."
        )
        print(msg, file=sys.stderr)
        raise BenchmarkError(msg)


# --------------------------------------------------------------------------------------------------
# Apply / remove
# --------------------------------------------------------------------------------------------------
def is_applied() -> bool:
    """Whether :func:`apply` has patched the loaded anomalib benchmark pipeline."""
    module = sys.modules.get("anomalib.pipelines.benchmark.pipeline")
    return bool(getattr(getattr(module, "Benchmark", None), _MARK, False))


def apply() -> bool:
    """Patch anomalib's benchmark pipeline (idempotent). Returns ``False`` if anomalib has no benchmark pipeline."""
    if is_applied():
        return True
    try:
        from anomalib.pipelines.benchmark.generator import BenchmarkJobGenerator
        from anomalib.pipelines.benchmark.job import BenchmarkJob
        from anomalib.pipelines.benchmark.pipeline import Benchmark
    except (ImportError, AttributeError) as error:
        # No pipelines (or pandas) in this anomalib, or they are still initialising (the plugin is imported from
        # inside anomalib's own imports); the autoload hook applies the patch once the pipeline module is loaded.
        logger.debug("anomalib's benchmark pipeline is not available (%s); nothing patched.", error)
        return False
    _originals.update(
        {
            "collect": BenchmarkJob.__dict__["collect"],
            "save": BenchmarkJob.__dict__["save"],
            "generate_jobs": BenchmarkJobGenerator.__dict__["generate_jobs"],
            "run": Benchmark.__dict__.get("run"),
        },
    )
    BenchmarkJob.collect = staticmethod(_collect)
    BenchmarkJob.save = staticmethod(_save)
    BenchmarkJobGenerator.generate_jobs = _generate_jobs
    Benchmark.run = _run
    setattr(Benchmark, _MARK, True)
    return True


def remove() -> None:
    """Undo :func:`apply`."""
    if not is_applied():
        return
    from anomalib.pipelines.benchmark.generator import BenchmarkJobGenerator
    from anomalib.pipelines.benchmark.job import BenchmarkJob
    from anomalib.pipelines.benchmark.pipeline import Benchmark

    BenchmarkJob.collect = _originals["collect"]
    BenchmarkJob.save = _originals["save"]
    BenchmarkJobGenerator.generate_jobs = _originals["generate_jobs"]
    if _originals.get("run") is None:
        del Benchmark.run
    else:
        Benchmark.run = _originals["run"]
    delattr(Benchmark, _MARK)
