"""What the answer key's questions share: the schedules their cases use, the case builders, stand-in models."""

from __future__ import annotations


import torch

from ...analytic import GaussianDenoiser
from ...schedules import Schedule
from ..spec import Case


# -- inputs ----------------------------------------------------------------------------------------
LONG = Schedule.linear()
SHORT = Schedule.linear(10, 1e-3, 0.3)
COSINE = Schedule.cosine()
COSINE_100 = Schedule.cosine(100)


def _time_cases(make, low: int = 1):
    """Cases over time: random t (batch 5, float32), t = low and t = T (batch 3), batch 1, float64,
    image-shaped x, and the short schedule's last step."""
    g = torch.Generator().manual_seed(2024)
    specs = [
        ("random t, batch 5", LONG, torch.randint(low, LONG.T + 1, (5,), generator=g), (5, 2), torch.float32),
        (f"t = {low}", LONG, torch.full((3,), low), (3, 2), torch.float32),
        ("t = T", LONG, torch.full((3,), LONG.T), (3, 2), torch.float32),
        ("batch size 1", LONG, torch.tensor([500]), (1, 2), torch.float32),
        ("float64", LONG, torch.randint(low, LONG.T + 1, (4,), generator=g), (4, 3), torch.float64),
        ("image-shaped x (batch 2, 1x4x4)", LONG, torch.tensor([3, 700]), (2, 1, 4, 4), torch.float32),
        ("a short schedule (T = 10), t = T", SHORT, torch.full((2,), SHORT.T), (2, 2), torch.float32),
    ]
    return [Case(label, make(s, t, shape, dtype, g)) for label, s, t, shape, dtype in specs]


def _randn(shape, dtype, g):
    return torch.randn(shape, generator=g, dtype=torch.float64).to(dtype)


def _rows(values, x):
    """Per-row values of shape (batch,), in x's dtype, shaped to broadcast over x: (batch, 1, ..., 1)."""
    return values.to(x.dtype).reshape(-1, *([1] * (x.dim() - 1)))


def _per(values, t, x):
    """``values`` (indexed by time) at each row's t, shaped to broadcast over x."""
    return _rows(values[t], x)


def _gaussian_model(schedule):
    return GaussianDenoiser(torch.tensor([0.5, -0.5]), torch.tensor([[1.0, 0.6], [0.6, 0.8]]), schedule)


def _wavy_model(x, t):
    """A nonlinear stand-in for a network on images: eps depends on x and t."""
    return torch.tanh(x + 1e-3 * _rows(t, x))
