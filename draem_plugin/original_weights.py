"""The authors' released DRÆM weights in DraemPlugin: read, checked, converted to RGB, and saved as a checkpoint.

The original ``train_DRAEM.py`` saves each sub-network with ``torch.save(model.state_dict(), path)``: the
reconstructive one as ``<run>_.pckl`` and the discriminative one as ``<run>__seg.pckl``, with the module names of the
original ``model_unet.py`` (``encoder.block1`` ... ``decoder.fin_out`` and ``encoder_segment.block1`` ...
``decoder_segment.fin_out``). :func:`convert_original` maps those names onto :class:`~draem_plugin.torch_model`'s,
reads both base widths from the tensors' shapes, and reorders colour channels.

Colour order: the original reads images with ``cv2.imread``, so its networks were trained on BGR, while anomalib
delivers RGB. The conversion permutes the input channels of both first convolutions (the discriminative one sees
``[reconstruction, image]``, so both halves) and the output channels of the reconstruction head, so that the imported
model fed an RGB image computes exactly what the original networks compute on the same image in BGR: the same
anomaly map and image score, and the same reconstruction with its channels in RGB order.

Example:
    >>> model = DraemPlugin.from_original("DRAEM_..._bottle_.pckl", "DRAEM_..._bottle__seg.pckl")  # doctest: +SKIP
    >>> import_original("DRAEM_..._bottle_.pckl", "DRAEM_..._bottle__seg.pckl", "bottle.ckpt")  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import pickle
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from lightning import __version__ as lightning_version
from torch import Tensor

from .validation import listing

if TYPE_CHECKING:
    from .lightning_model import DraemPlugin

__all__ = ["convert_original", "find_original_pairs", "import_original", "load_original", "main"]

logger = logging.getLogger(__name__)

#: (original layer, DraemPlugin layer, kind) of every layer with weights, in the original's order. A ``block`` is
#: conv, BN, ReLU, conv, BN, ReLU (weights at 0, 1, 3, 4, in both); an ``up`` is Upsample, conv, BN, ReLU (1, 2); a
#: ``head`` is one convolution (``fin_out.0`` there, ``head`` here).
RECONSTRUCTIVE_LAYERS: tuple[tuple[str, str, str], ...] = (
    *((f"encoder.block{i + 1}", f"encoder.{i}", "block") for i in range(5)),
    *(
        layer
        for i in range(4)
        for layer in ((f"decoder.up{i + 1}", f"decoder.{i}.0", "up"), (f"decoder.db{i + 1}", f"decoder.{i}.1", "block"))
    ),
    ("decoder.fin_out.0", "head", "head"),
)
DISCRIMINATIVE_LAYERS: tuple[tuple[str, str, str], ...] = (
    *((f"encoder_segment.block{i + 1}", f"encoder.{i}", "block") for i in range(6)),
    *(
        layer
        for i, name in enumerate(("b", "1", "2", "3", "4"))
        for layer in (
            (f"decoder_segment.up{name}", f"up.{i}", "up"),
            (f"decoder_segment.db{name}", f"fuse.{i}", "block"),
        )
    ),
    ("decoder_segment.fin_out.0", "head", "head"),
)
_BATCH_NORM = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
#: State-dict entries of each kind of layer, relative to the layer.
_ENTRIES = {
    "block": (
        *(f"{i}.{n}" for i in (0, 3) for n in ("weight", "bias")),
        *(f"{i}.{n}" for i in (1, 4) for n in _BATCH_NORM),
    ),
    "up": ("1.weight", "1.bias", *(f"2.{n}" for n in _BATCH_NORM)),
    "head": ("weight", "bias"),
}
#: The tensor whose shape gives each sub-network's base width (its first convolution: base x in x 3 x 3).
_WIDTH_KEYS = {"reconstructive": "encoder.block1.0.weight", "discriminative": "encoder_segment.block1.0.weight"}
_BGR = [2, 1, 0]


def _key_map(layers: tuple[tuple[str, str, str], ...], prefix: str) -> dict[str, str]:
    """Original state-dict key -> DraemPlugin's, for every entry of ``layers``."""
    return {f"{old}.{entry}": f"{prefix}{new}.{entry}" for old, new, kind in layers for entry in _ENTRIES[kind]}


def _fail(path: Path, problem: str) -> ValueError:
    return ValueError(f"{path}: {problem}")


def load_original(path: str | Path, network: str) -> dict[str, Tensor]:
    """Read one state dict the original saved (``weights_only=True``), refusing anything else with a clear error.

    Args:
        path: the ``.pckl`` file.
        network: ``"reconstructive"`` (``<run>_.pckl``) or ``"discriminative"`` (``<run>__seg.pckl``).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: naming the file and what is wrong: not a torch file or truncated, a Lightning checkpoint, not a
            state dict, the other sub-network's file, missing or unexpected keys.
    """
    path = Path(path)
    if not path.is_file():
        msg = f"{path} does not exist; pass the {network} network's .pckl file of the original DRÆM training."
        raise FileNotFoundError(msg)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        problem = (
            f"not a readable torch file ({type(error).__name__}: {reason[:200]}); it may be truncated (download it "
            "again) or not a state dict saved by torch.save(model.state_dict(), ...)"
        )
        raise _fail(path, problem) from error
    if isinstance(state, dict) and "state_dict" in state and "pytorch-lightning_version" in state:
        problem = (
            "this is a Lightning checkpoint, not one of the original DRÆM's state dicts; use it directly, e.g. "
            f"anomalib test --model DraemPlugin --ckpt_path {path}"
        )
        raise _fail(path, problem)
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        problem = f"holds a {type(state).__name__}, not a state dict of tensors (torch.save(model.state_dict(), ...))"
        raise _fail(path, problem)
    other = "discriminative" if network == "reconstructive" else "reconstructive"
    if _WIDTH_KEYS[network] not in state and _WIDTH_KEYS[other] in state:
        problem = (
            f"this is the {other} network's state dict, but it was given as the {network} one: the two files are "
            "swapped (the reconstructive one is <run>_.pckl, the discriminative one <run>__seg.pckl)"
        )
        raise _fail(path, problem)
    layers = RECONSTRUCTIVE_LAYERS if network == "reconstructive" else DISCRIMINATIVE_LAYERS
    expected = set(_key_map(layers, ""))
    missing, unexpected = sorted(expected - state.keys()), sorted(state.keys() - expected)
    if missing or unexpected:
        parts = [f"{len(missing)} missing ({listing(missing, 5)})"] if missing else []
        parts += [f"{len(unexpected)} unexpected ({listing(unexpected, 5)})"] if unexpected else []
        problem = f"not the original {network} network's state dict: keys " + ", ".join(parts)
        raise _fail(path, problem)
    return state


def convert_original(reconstructive: dict[str, Tensor], discriminative: dict[str, Tensor]) -> tuple[dict, int, int]:
    """The original's two state dicts as one ``DraemPluginModel`` state dict for RGB input, and the base widths.

    Returns:
        ``(state_dict, reconstructive_width, discriminative_width)``.
    """
    names = {
        **_key_map(RECONSTRUCTIVE_LAYERS, "reconstructive_subnetwork."),
        **_key_map(DISCRIMINATIVE_LAYERS, "discriminative_subnetwork."),
    }
    state = {names[key]: value for key, value in (*reconstructive.items(), *discriminative.items())}
    rec_first, disc_first = (
        "reconstructive_subnetwork.encoder.0.0.weight",
        "discriminative_subnetwork.encoder.0.0.weight",
    )
    state[rec_first] = state[rec_first][:, _BGR]
    state[disc_first] = state[disc_first][:, [*_BGR, *(c + 3 for c in _BGR)]]
    for name in ("weight", "bias"):
        key = f"reconstructive_subnetwork.head.{name}"
        state[key] = state[key][_BGR]
    return (
        state,
        reconstructive[_WIDTH_KEYS["reconstructive"]].shape[0],
        discriminative[_WIDTH_KEYS["discriminative"]].shape[0],
    )


def original_model(reconstructive_path: str | Path, discriminative_path: str | Path, **init_args: Any) -> DraemPlugin:
    """:meth:`DraemPlugin.from_original`: a DraemPlugin holding the released networks (see the module docstring)."""
    from .lightning_model import DraemPlugin

    if init_args.get("normalization", "batch") != "batch":
        msg = "The released DRÆM weights use BatchNorm; leave normalization out (or set it to 'batch') to import them."
        raise ValueError(msg)
    reconstructive_path, discriminative_path = Path(reconstructive_path), Path(discriminative_path)
    state, rec_width, disc_width = convert_original(
        load_original(reconstructive_path, "reconstructive"), load_original(discriminative_path, "discriminative")
    )
    for name, width in (("reconstructive_width", rec_width), ("discriminative_width", disc_width)):
        if init_args.get(name, width) != width:
            msg = f"{name}={init_args[name]} was given, but the weights have base width {width}; leave it out."
            raise ValueError(msg)
    model = DraemPlugin(**{"reconstructive_width": rec_width, "discriminative_width": disc_width, **init_args})
    try:
        model.model.load_state_dict(state)
    except RuntimeError as error:
        shapes = [line.strip() for line in str(error).splitlines() if "size mismatch" in line]
        msg = (
            f"{reconstructive_path} and {discriminative_path} do not fit one DRÆM architecture at base widths "
            f"{rec_width} / {disc_width} (read from their first convolutions): {listing(shapes, 3)}"
        )
        raise ValueError(msg) from None
    logger.info(
        "Imported the original DRÆM weights (widths %d / %d) from %s and %s.",
        rec_width,
        disc_width,
        reconstructive_path,
        discriminative_path,
    )
    return model


def import_original(
    reconstructive: Path, discriminative: Path, output: Path, image_size: int | tuple[int, int] = 256
) -> Path:
    """Write the released networks as a Lightning checkpoint that ``anomalib test|predict|export`` load.

    Args:
        reconstructive: the reconstructive network's file, ``<run>_.pckl``.
        discriminative: the discriminative network's file, ``<run>__seg.pckl``.
        output: the checkpoint to write (``.ckpt``).
        image_size: input size of the pre-processor (the original evaluates at 256).

    Returns:
        ``output``.
    """
    model = original_model(reconstructive, discriminative, image_size=image_size)
    checkpoint: dict[str, Any] = {
        "epoch": 0,
        "global_step": 0,
        "pytorch-lightning_version": lightning_version,
        "state_dict": model.state_dict(),
        "hparams_name": "kwargs",
        "hyper_parameters": dict(model.hparams),
    }
    model.on_save_checkpoint(checkpoint)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint, output)
    logger.info("Wrote %s.", output)
    return output


def find_original_pairs(folder: str | Path, categories: list[str]) -> dict[str, tuple[Path, Path]]:
    """Category -> (reconstructive, discriminative) files ``<run>_<category>_.pckl``, ``<run>_<category>__seg.pckl``.

    Categories without a pair are left out; a category with several pairs (several runs in one folder) is an error.

    Example:
        >>> find_original_pairs("checkpoints/DRAEM_checkpoints", ["bottle"])  # doctest: +SKIP
        {'bottle': (PosixPath('.../DRAEM_seg_large_ae_large_0.0001_800_bs8_bottle_.pckl'), PosixPath('..._seg.pckl'))}
    """
    pairs = {}
    for category in categories:
        found = [
            (seg.with_name(seg.name.removesuffix("_seg.pckl") + ".pckl"), seg)
            for seg in sorted(Path(folder).glob(f"*_{category}__seg.pckl"))
        ]
        found = [pair for pair in found if pair[0].is_file()]
        if len(found) > 1:
            msg = f"{folder} holds {len(found)} runs for {category!r} ({listing(p[0].name for p in found)}); keep one."
            raise ValueError(msg)
        if found:
            pairs[category] = found[0]
    return pairs


def main() -> None:
    """Console entry point ``draem-import-original`` (a jsonargparse CLI over :func:`import_original`)."""
    from jsonargparse import auto_cli

    output = auto_cli(import_original, as_positional=False)
    print(f"wrote {output}: anomalib test --model DraemPlugin --ckpt_path {output} --data ...")  # noqa: T201
