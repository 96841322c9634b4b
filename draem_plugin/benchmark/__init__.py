"""``draem-bench``: side-by-side benchmarks of DraemPlugin against anomalib's Draem, PatchCore and PaDiM.

Every comparison is measured in one process, on the same inputs, with the two contenders timed alternately
after warm-up, so that no figure is compared with one taken on another day or machine.

Subcommands (see ``draem-bench --help`` and ``docs/benchmarks.md``):

* ``augment``: anomaly-synthesis throughput of :class:`~draem_plugin.augmenter.PerlinAnomalyAugmenter` against
  anomalib's ``PerlinAnomalyGenerator`` on the same texture folder.
* ``train-step``: full training steps (augmentation, forward, loss, backward, Adam step) per second and peak
  memory of DraemPlugin against anomalib's ``Draem`` at equal batch, size and widths.
* ``infer``: inference throughput and per-batch latency of DraemPlugin, Draem, PatchCore and PaDiM.
* ``quality``: train and test those models on MVTec-AD-layout categories with anomalib's ``Engine`` and write a
  CSV, a markdown table and a PNG bar chart.

:mod:`draem_plugin.benchmark.anomalib_patch` makes ``anomalib benchmark`` work with grids of models whose result
rows differ and makes a failed job fail the command.

This package imports nothing heavy at import time; the subcommands import torch and anomalib when they run.
"""

from __future__ import annotations

__all__ = ["anomalib_patch"]
