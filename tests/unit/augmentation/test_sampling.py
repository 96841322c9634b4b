"""Draws from one host generator, placed on the batch's device."""

from __future__ import annotations

import torch

from draem_plugin.augmentation.sampling import draw_device, rand_on, randint_on, uniform_on

CPU = torch.device("cpu")


def test_draws_come_from_the_generator_and_keep_its_stream() -> None:
    a, b = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert torch.equal(rand_on(5, a, CPU), torch.rand(5, generator=b))
    assert torch.equal(randint_on(1, 9, (5,), a, CPU), torch.randint(1, 9, (5,), generator=b))
    values = uniform_on((1000,), -2.0, 3.0, a, CPU)
    assert values.min() >= -2.0 and values.max() < 3.0 and values.std() > 1.0


def test_the_draw_device_is_the_generators() -> None:
    assert draw_device(torch.Generator(), torch.device("meta")) == CPU
    assert draw_device(None, torch.device("meta")) == torch.device("meta")
