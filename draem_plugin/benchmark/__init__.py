"""``draem-bench``: side-by-side benchmarks of DraemPlugin against anomalib's Draem, PatchCore and PaDiM.

Every comparison is measured in one process, on the same inputs, with the contenders timed alternately after warm-up,
so that no figure is compared with one taken on another day or machine. Each subcommand is a settings type that
extends :class:`~.settings.BenchSettings` (see ``draem-bench --help`` and ``docs/benchmarks.md``):

* :class:`~.augment.Augment` (``augment``): anomaly-synthesis throughput against anomalib's
  ``PerlinAnomalyGenerator`` on the same texture folder.
* :class:`~.train_step.TrainStep` (``train-step``): full training steps per second and peak memory against
  anomalib's ``Draem`` at equal batch, size and widths.
* :class:`~.infer.Infer` (``infer``): inference throughput and latency of DraemPlugin, Draem, PatchCore and PaDiM.
* :class:`~.quality.Quality` (``quality``): train and test those models on MVTec-layout categories, with learning
  curves (:mod:`.curves`).
* :class:`~.pipeline.Pipeline` (``pipeline``): where a real training step's time goes, with the image cache on and
  off.

:mod:`.anomalib_patch` makes ``anomalib benchmark`` work with grids of models whose result rows differ and makes a
failed job fail the command; the plugin's ``.pth`` hook applies it when that pipeline is loaded, not on import.
This package imports nothing heavy at import time; the subcommands import torch and anomalib when they run.
"""
