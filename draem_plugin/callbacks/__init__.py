"""Lightning callbacks DraemPlugin adds to every fit (``configure_callbacks``); each guards one thing.

* :class:`FiniteLossGuard`: stop on a NaN / inf loss before a checkpoint with broken weights is written.
* :class:`FinalValidation`: validate the final weights when the schedule did not (thresholds, ``model.ckpt``).
* :class:`RunLengthWarning`: warn early when a run cannot finish in reasonable time.
* :class:`NetworkAverage`: an exponential moving average of the networks (``ema_decay``; off by default).

Example:
    >>> from draem_plugin.callbacks import FinalValidation, FiniteLossGuard, RunLengthWarning
"""

from __future__ import annotations

from .final_validation import FinalValidation
from .finite_loss import FINITE_CHECK_INTERVAL, FiniteLossGuard
from .network_average import NetworkAverage
from .run_length import RunLengthWarning

__all__ = ["FINITE_CHECK_INTERVAL", "FinalValidation", "FiniteLossGuard", "NetworkAverage", "RunLengthWarning"]
