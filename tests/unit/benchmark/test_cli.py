"""The draem-bench command line: one subcommand per settings type, shared flags, clear failures."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from draem_plugin.benchmark.cli import COMMANDS, build_parser, main
from draem_plugin.benchmark.settings import BenchSettings


def test_help_lists_the_subcommands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for name in ("augment", "train-step", "infer", "quality", "pipeline"):
        assert name in out


def test_every_subcommand_takes_the_shared_flags_with_their_help(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    for name, command in COMMANDS.items():
        assert issubclass(command, BenchSettings)
        config = parser.parse_args([name, "--image_size", "64", "--seed", "3", "--device", "cpu"])
        assert config[name].image_size == 64 and config[name].seed == 3, name
        with pytest.raises(SystemExit):
            main([name, "--help"])
        assert "torch.set_num_threads (default: torch's choice)" in " ".join(capsys.readouterr().out.split()), name


def test_a_subcommand_runs_from_the_command_line(tmp_path: Path, textures: Path) -> None:
    out = tmp_path / "augment.json"
    main(
        [
            "augment",
            "--source",
            str(textures),
            "--batch_size",
            "[2]",
            "--image_size",
            "64",
            "--warmup",
            "0",
            "--rounds",
            "1",
            "--iters",
            "1",
            "--json",
            str(out),
        ]
    )
    assert out.is_file()


def test_cuda_without_a_gpu_fails_clearly(textures: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(SystemExit) as exit_:
        main(["augment", "--device", "cuda", "--source", str(textures), "--image_size", "64"])
    assert exit_.value.code == 1
    assert "torch.cuda.is_available() is False" in capsys.readouterr().err
