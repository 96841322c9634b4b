"""The table of the original texture ops and their batched, per-sample application."""

from __future__ import annotations

import math

import kornia
import pytest
import torch

from draem_plugin.augmentation.texture_ops import (
    PAPER_OPS,
    RANDOM_TEXTURE_OPS,
    TEXTURE_OPS,
    Coin,
    Integers,
    TextureOp,
    Uniform,
    apply_random_texture_ops,
)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _low_contrast(batch: int = 8) -> torch.Tensor:
    return 0.2 + 0.5 * torch.rand(batch, 3, 32, 32, generator=_gen(11)) ** 2


@pytest.mark.parametrize("name", TEXTURE_OPS)
def test_every_op_keeps_shape_and_range_and_changes_the_input(name: str) -> None:
    x = _low_contrast()
    out = RANDOM_TEXTURE_OPS[name](x, _gen())
    assert out.shape == x.shape and out.dtype == x.dtype
    assert out.min() >= 0 and out.max() <= 1
    assert (out - x).abs().amax(dim=(1, 2, 3)).gt(1e-3).sum() >= 3  # several samples visibly changed
    assert torch.equal(out, RANDOM_TEXTURE_OPS[name](x, _gen()))  # parameters come from the generator


def test_random_ops_each_sample_gets_distinct_ops_in_random_order(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake ops write their id into a per-sample history, so the applied sequence is visible."""
    names = [f"fake{k}" for k in range(4)]
    calls: list[int] = []

    def make(k: int):
        def op(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
            calls.append(x.shape[0])
            out = x.clone()
            step = out[:, 1, 0, 0].long()
            out[torch.arange(x.shape[0]), 2, 0, step] = k + 1
            out[:, 1, 0, 0] += 1
            return out

        return op

    for k, name in enumerate(names):
        monkeypatch.setitem(RANDOM_TEXTURE_OPS, name, make(k))
    batch = 1200
    out = apply_random_texture_ops(torch.zeros(batch, 3, 2, 4), 2, names, generator=_gen())
    assert torch.all(out[:, 1, 0, 0] == 2)  # every sample got exactly num_ops ops
    history = out[:, 2, 0, :2].long()
    assert torch.all(history[:, 0] != history[:, 1]) and torch.all(history >= 1)  # without replacement
    assert sum(calls) == 2 * batch and len(calls) <= 2 * len(names)  # batched: one call per (round, op)
    pairs = torch.bincount((history[:, 0] - 1) * 4 + history[:, 1] - 1, minlength=16).view(4, 4)
    expected = batch / 12  # 12 ordered pairs of distinct ops
    off_diagonal = pairs[~torch.eye(4, dtype=torch.bool)]
    assert torch.all((off_diagonal - expected).abs() < 5 * math.sqrt(expected))


def test_the_table_holds_the_ten_original_ops_and_the_papers_seven() -> None:
    assert set(TEXTURE_OPS) == set(RANDOM_TEXTURE_OPS) and len(TEXTURE_OPS) == 10
    assert set(PAPER_OPS) < set(TEXTURE_OPS) and len(PAPER_OPS) == 7


def test_ops_that_kornia_provides_are_kornias() -> None:
    assert RANDOM_TEXTURE_OPS["sharpness"].function is kornia.enhance.sharpness
    assert RANDOM_TEXTURE_OPS["posterize"].function is kornia.enhance.posterize
    assert RANDOM_TEXTURE_OPS["solarize"].function is kornia.enhance.solarize
    assert RANDOM_TEXTURE_OPS["equalize"].function is kornia.enhance.equalize
    assert RANDOM_TEXTURE_OPS["invert"].function is kornia.enhance.invert


def test_parameter_ranges_are_the_originals() -> None:
    """The imgaug ranges of the original, on 0..255 divided by 255."""
    params = {name: dict(op.params) for name, op in RANDOM_TEXTURE_OPS.items()}
    assert params["gamma"] == {"gamma": Uniform(0.5, 2.0, per_channel=True)}
    assert params["brightness"]["multiplier"] == Uniform(0.8, 1.2)
    assert params["brightness"]["offset"] == Uniform(-30 / 255, 30 / 255)
    assert params["brightness"]["space"] == Integers(0, 6) and params["brightness"]["add_first"] == Coin(0.5)
    assert params["sharpness"] == {"factor": Uniform(0.0, 2.0)}
    assert params["hue_saturation"]["hue"] == Uniform(-50 / 255 * 360, 50 / 255 * 360)
    assert (
        params["solarize"] == {"thresholds": Uniform(32 / 255, 128 / 255)} and RANDOM_TEXTURE_OPS["solarize"].p == 0.5
    )
    assert params["posterize"] == {"bits": Integers(1, 9)}
    assert params["autocontrast"] == {"cutoff": Integers(0, 21)}
    assert params["rotate"] == {"angle": Uniform(-45.0, 45.0)}


def test_parameters_are_drawn_from_their_ranges() -> None:
    drawn: dict[str, torch.Tensor] = {}

    def record(x: torch.Tensor, **params: torch.Tensor) -> torch.Tensor:
        drawn.update(params)
        return x

    op = TextureOp(record, {"u": Uniform(0.2, 0.3, per_channel=True), "k": Integers(3, 5), "c": Coin(0.25)})
    op(torch.zeros(4000, 3, 1, 1), _gen())
    assert drawn["u"].shape == (4000, 3) and drawn["u"].min() >= 0.2 and drawn["u"].max() < 0.3
    assert set(drawn["k"].tolist()) == {3, 4}
    assert abs(drawn["c"].float().mean().item() - 0.25) < 0.03


def test_apply_probability_leaves_the_other_samples_unchanged() -> None:
    op = TextureOp(kornia.enhance.invert, p=0.3)
    x = torch.rand(2000, 3, 2, 2, generator=_gen(1))
    out = op(x, _gen())
    inverted = (out - (1 - x)).abs().flatten(1).amax(dim=1) < 1e-6
    kept = (out == x).flatten(1).all(dim=1)
    assert torch.all(inverted ^ kept)
    assert abs(inverted.float().mean().item() - 0.3) < 0.04
