r"""``draem-bench``: the command line of the side-by-side benchmarks, built from the subcommands' settings types.

Each subcommand prints a table and, with ``--json PATH``, writes its rows (and the machine and settings) as JSON.
Rows comparing two things carry a ``ratio`` field: DraemPlugin's figure over the other's (above 1: DraemPlugin is
faster). Examples::

    draem-bench augment --source ../shared/data/textures/dtd_lowres --batch_size [8,32] --json augment.json
    draem-bench train-step --source DIR --batch_size 8 --image_size 256 --reconstructive_width 32 \\
        --discriminative_width 16 --precision bf16-mixed --channels_last true
    draem-bench infer --source DIR --backbone resnet18.tv_in1k --hf_home ../shared/weights/hf_home
    draem-bench quality --root ../shared/data/mvtec_ad --category bottle --epochs 30 --eval_every 5
    draem-bench pipeline --root ../shared/data/mvtec_ad --category bottle --device cuda --precision bf16-mixed
"""

from __future__ import annotations

import os
import sys
import traceback
from dataclasses import is_dataclass

from docstring_parser import parse as parse_docstring
from jsonargparse import ArgumentParser

from .augment import Augment
from .infer import Infer
from .pipeline import Pipeline
from .quality import Quality
from .settings import BenchSettings
from .train_step import TrainStep

__all__ = ["COMMANDS", "build_parser", "main"]

#: Subcommand name -> its settings type (which measures).
COMMANDS: dict[str, type[BenchSettings]] = {
    command.NAME: command for command in (Augment, TrainStep, Infer, Quality, Pipeline)
}


def _field_help(command: type[BenchSettings]) -> dict[str, str]:
    """Help of every field, from the ``Args:`` sections of the type and all its bases (the nearest one wins).

    jsonargparse reads the docstrings of a dataclass and its direct base only, not of the bases further up.
    """
    docs: dict[str, str] = {}
    for cls in reversed(command.__mro__):
        if is_dataclass(cls) and cls.__doc__:
            docs.update({param.arg_name: param.description for param in parse_docstring(cls.__doc__).params})
    return docs


def build_parser() -> ArgumentParser:
    """The ``draem-bench`` parser: one subcommand per settings type, its flags read from the type's fields."""
    parser = ArgumentParser(prog="draem-bench", description=__doc__.splitlines()[0])
    subcommands = parser.add_subcommands()
    for name, command in COMMANDS.items():
        subparser = ArgumentParser(description=command.__doc__)
        subparser.add_class_arguments(command, nested_key=None)
        docs = _field_help(command)
        for action in subparser._actions:
            action.help = docs.get(action.dest, action.help)
        subcommands.add_subcommand(name, subparser, help=command.__doc__.splitlines()[0])
    return parser


def main(args: list[str] | None = None) -> None:
    """Entry point of the ``draem-bench`` console script."""
    os.environ.setdefault("PYTHONWARNINGS", "ignore::FutureWarning")
    parser = build_parser()
    config = parser.parse_args(args)
    name = config.subcommand
    try:
        COMMANDS[name](**config[name].as_dict()).execute()
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    except Exception as error:  # noqa: BLE001  (print the traceback, then one clear line, and exit non-zero)
        traceback.print_exc()
        print(f"\ndraem-bench: error: {type(error).__name__}: {error}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
