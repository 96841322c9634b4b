"""The settings every ``draem-bench`` subcommand shares, and what running one means: set up, measure, report.

Each subcommand is a dataclass that extends :class:`BenchSettings` with its own fields and implements
:meth:`BenchSettings.measure`; the command line (:mod:`.cli`) is built from those dataclasses, so a flag is declared
once, with its help text, for every subcommand that takes it.

Example:
    >>> settings = BenchSettings(image_size=64)
    >>> settings.torch_device().type
    'cpu'
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

__all__ = [
    "SHARED",
    "BenchSettings",
    "Device",
    "Precision",
    "TimedSettings",
    "default_texture_source",
    "quiet",
    "resolve_device",
    "use_hf_cache",
]

logger = logging.getLogger(__name__)

Device = Literal["cpu", "cuda"]
#: Lightning's precision names: full float32, or bf16 autocast around the networks and loss.
Precision = Literal["32-true", "bf16-mixed"]

#: The optional ``../shared`` folder beside a source checkout (real data, textures, offline backbones).
SHARED = Path(__file__).resolve().parents[3] / "shared"
_TEXTURE_CANDIDATES = (SHARED / "data" / "textures" / "dtd_lowres", Path("datasets/dtd/images"), Path("datasets/dtd"))


def resolve_device(device: str) -> Any:
    """``torch.device(device)``; ``cuda`` without a usable GPU raises a clear error."""
    import torch

    if device not in ("cpu", "cuda"):
        msg = f"device must be 'cpu' or 'cuda', got {device!r}."
        raise ValueError(msg)
    if device == "cuda" and not torch.cuda.is_available():
        msg = "--device cuda was requested but torch.cuda.is_available() is False on this machine."
        raise RuntimeError(msg)
    return torch.device(device)


def default_texture_source(source: str | Path | None) -> Path:
    """The texture folder: ``source`` if given, else ``../shared/data/textures/dtd_lowres`` or ``./datasets/dtd``."""
    if source is not None:
        path = Path(source).expanduser()
        if not path.exists():
            msg = f"texture source {path} does not exist; pass --source DIR (a folder of texture images)."
            raise FileNotFoundError(msg)
        return path
    for candidate in _TEXTURE_CANDIDATES:
        if candidate.is_dir():
            return candidate
    msg = (
        "no texture folder given and none found at "
        + ", ".join(str(c) for c in _TEXTURE_CANDIDATES)
        + "; pass --source DIR (e.g. the DTD 'images' folder): both augmenters must draw real textures."
    )
    raise FileNotFoundError(msg)


def use_hf_cache(hf_home: str | Path | None) -> None:
    """Load ImageNet backbones from the local Hugging Face cache ``hf_home`` only (no network).

    Sets ``HF_HOME`` and ``HF_HUB_OFFLINE=1`` for this process and its children and, because ``huggingface_hub``
    reads them at import (which has already happened by the time a subcommand runs), also its module constants.
    ``None`` leaves the environment as it is: anomalib's defaults then download as usual where there is a network.
    """
    if hf_home is None:
        return
    home = Path(hf_home).expanduser().resolve()
    if not (home / "hub").is_dir():
        msg = f"--hf_home {home} is not a Hugging Face cache (it has no 'hub' folder)."
        raise FileNotFoundError(msg)
    os.environ["HF_HOME"] = str(home)
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ.pop("HF_HUB_CACHE", None)
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None:
        constants.HF_HOME = str(home)
        constants.HF_HUB_CACHE = str(home / "hub")
        constants.HF_HUB_OFFLINE = True


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence the warnings and info logs that model construction and trainer-less steps emit."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        levels = {}
        for name in ("lightning", "lightning.pytorch", "lightning.fabric", "anomalib", "draem_plugin", "timm"):
            log = logging.getLogger(name)
            levels[name] = log.level
            log.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for name, level in levels.items():
                logging.getLogger(name).setLevel(level)


@dataclass
class BenchSettings:
    """What a side-by-side benchmark runs on.

    Args:
        device: cpu or cuda (CUDA timings synchronise the device around every timed call).
        batch_size: Images per batch (the training batch size where models train).
        image_size: Side of the square images every model gets.
        reconstructive_width: Base width of both DRÆMs' reconstructive networks (original 128).
        discriminative_width: Base width of both DRÆMs' discriminative networks (original 64).
        precision: 32-true, or bf16-mixed (torch.autocast around the networks and loss, as Lightning does).
        source: Texture folder of both DRÆMs' anomaly synthesis (default: ../shared/data/textures/dtd_lowres,
            else ./datasets/dtd).
        hf_home: Local Hugging Face cache to load PatchCore's and PaDiM's backbones from, offline (sets HF_HOME and
            HF_HUB_OFFLINE=1).
        seed: Seed of the images, the weights and the augmenters.
        threads: torch.set_num_threads (default: torch's choice).
        json: Also write the rows (with the machine and these settings) to this JSON file.
    """

    #: Subcommand name, title of the printed table, and the columns it shows (the JSON rows hold more).
    NAME: ClassVar[str] = ""
    TITLE: ClassVar[str] = ""
    COLUMNS: ClassVar[tuple[str, ...]] = ()

    device: Device = "cpu"
    batch_size: int = 8
    image_size: int = 256
    reconstructive_width: int = 128
    discriminative_width: int = 64
    precision: Precision = "32-true"
    source: str | None = None
    hf_home: str | None = None
    seed: int = 0
    threads: int | None = None
    json: str | None = None

    def torch_device(self) -> Any:
        """The ``torch.device`` of ``device`` (a clear error for ``cuda`` without a GPU)."""
        return resolve_device(self.device)

    def measure(self) -> list[dict[str, Any]]:
        """Run the benchmark; one dict per result row."""
        raise NotImplementedError

    def settings(self) -> dict[str, Any]:
        """The settings as recorded with the results."""
        return dataclasses.asdict(self)

    def execute(self) -> list[dict[str, Any]]:
        """Set up the process, measure, print the table and write the JSON file."""
        from .report import machine_info, print_report, write_json

        if self.threads is not None:
            import torch

            torch.set_num_threads(self.threads)
        use_hf_cache(self.hf_home)
        rows = self.measure()
        machine = machine_info("cuda" in str(self.device))
        print_report(self.TITLE, rows, self.COLUMNS, self.settings(), machine)
        if self.json is not None:
            path = write_json(self.json, self.NAME, self.settings(), rows, machine)
            print(f"\nwrote {path}")
        return rows


@dataclass
class TimedSettings(BenchSettings):
    """A benchmark that times contenders alternately after warm-up.

    Args:
        warmup: Untimed calls per contender before timing.
        rounds: Alternating rounds (the order of the contenders flips every round).
        iters: Timed calls per contender and round.
    """

    warmup: int = 2
    rounds: int = 2
    iters: int = 3
