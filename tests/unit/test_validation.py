"""Argument checks and the wording of their errors."""

from __future__ import annotations

import math

import pytest

from draem_plugin.validation import as_size, check_interval, check_probability, check_seed, listing


def test_as_size_accepts_an_int_or_a_pair() -> None:
    assert as_size(64, "image_size") == (64, 64)
    assert as_size([96, 32], "image_size", multiple=32) == (96, 32)


@pytest.mark.parametrize(
    ("value", "multiple", "match"),
    [
        (0, 1, r"size must be a positive int or a \(height, width\) pair of them, got 0"),
        ((64, True), 1, "positive int"),
        ((64, 64, 64), 1, "pair"),
        (48, 32, "multiple of 32 in both dimensions.*got 48"),
        (16, 32, "at least 32"),
    ],
)
def test_as_size_names_the_argument_and_the_rule(value: object, multiple: int, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        as_size(value, "size", multiple=multiple)  # type: ignore[arg-type]


def test_probability_and_interval_checks() -> None:
    assert check_probability(1, "p") == 1.0
    for bad in (-0.1, 1.5, math.nan):
        with pytest.raises(ValueError, match=r"p must be a probability in \[0, 1\]"):
            check_probability(bad, "p")
    assert check_interval((0, 0.8), "beta_range", 0.0, 1.0) == (0.0, 0.8)
    with pytest.raises(ValueError, match=r"beta_range must be \(lo, hi\) with lo <= hi within \[0.0, 1.0\]"):
        check_interval((0.5, 1.2), "beta_range", 0.0, 1.0)
    with pytest.raises(ValueError, match=r"angles must be \(lo, hi\) with lo <= hi, got \(90, -90\)"):
        check_interval((90, -90), "angles")


def test_listing_counts_what_it_leaves_out() -> None:
    assert listing(["a", "b"]) == "a, b"
    assert listing([f"f{i}" for i in range(12)], limit=3) == "f0, f1, f2, ... (9 more)"


@pytest.mark.parametrize("seed", [None, 0, 2**32 - 1])
def test_check_seed_accepts_none_and_lightnings_range(seed: int | None) -> None:
    assert check_seed(seed) == seed


@pytest.mark.parametrize("seed", [-1, 2**32, 2**70, True, 1.5, "0"])
def test_check_seed_names_the_range(seed: object) -> None:
    with pytest.raises(ValueError, match=r"seed must be None or an int in \[0, 4294967295\].*got"):
        check_seed(seed)  # type: ignore[arg-type]
