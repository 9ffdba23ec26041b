"""Data sets. Two-dimensional toy sets (seeded), where every distribution can be drawn.

Each toy set is scaled to roughly unit variance per coordinate, like images scaled to [-1, 1], so the
DDPM schedule (alpha-bar_T about 4e-5) destroys it completely.  ``eight_gaussians`` and ``gaussian`` are
exact mixtures: their parameters come from :func:`toy_mixture`, so :mod:`minddim.analytic` gives the
Bayes-optimal model for them.
"""

from __future__ import annotations

import math

import torch

from ._validate import check_positive_int
from .analytic import sample_mixture

TOY_SETS = ("swiss_roll", "two_moons", "eight_gaussians", "checkerboard", "gaussian")


def toy_mixture(name: str):
    """(weights, means, covs) in float64 of the toy sets that are Gaussian mixtures.

    - ``"eight_gaussians"``: eight equally weighted components on a circle of radius 2, std 0.2 each;
    - ``"gaussian"``: one correlated Gaussian, mean (0.5, -0.5), covariance [[1, 0.8], [0.8, 1]].
    """
    if name == "eight_gaussians":
        angle = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
        means = 2.0 * torch.stack([angle.cos(), angle.sin()], 1)
        covs = (0.2**2) * torch.eye(2, dtype=torch.float64).expand(8, 2, 2).clone()
        return torch.full((8,), 1 / 8, dtype=torch.float64), means, covs
    if name == "gaussian":
        return (torch.ones(1, dtype=torch.float64), torch.tensor([[0.5, -0.5]], dtype=torch.float64),
                torch.tensor([[[1.0, 0.8], [0.8, 1.0]]], dtype=torch.float64))
    raise ValueError(f"name must be one of the exact mixtures ('eight_gaussians', 'gaussian'), got {name!r}")


def toy_data(name: str, n: int, seed: int | None = 0, generator: torch.Generator | None = None,
             dtype=torch.float32) -> torch.Tensor:
    """``n`` points of the toy set ``name`` (one of ``TOY_SETS``), shape (n, 2).

    Seeded: the same ``seed`` gives the same points; pass ``generator`` instead to continue a stream.
    """
    n = check_positive_int(n, "n")
    if name not in TOY_SETS:
        raise ValueError(f"name must be one of {TOY_SETS}, got {name!r}")
    g = generator if generator is not None else torch.Generator().manual_seed(0 if seed is None else int(seed))
    return _MAKERS[name](n, g).to(dtype)


def _swiss_roll(n, g):
    u = 1.5 * math.pi * (1 + 2 * torch.rand(n, generator=g, dtype=torch.float64))
    x = torch.stack([u * u.cos(), u * u.sin()], 1) / 5.0
    return x + 0.05 * torch.randn(n, 2, generator=g, dtype=torch.float64)


def _two_moons(n, g):
    upper = torch.rand(n, generator=g) < 0.5
    a = math.pi * torch.rand(n, generator=g, dtype=torch.float64)
    x = torch.where(upper[:, None], torch.stack([a.cos(), a.sin()], 1),
                    torch.stack([1 - a.cos(), 0.5 - a.sin()], 1))
    x = x + 0.05 * torch.randn(n, 2, generator=g, dtype=torch.float64)
    return (x - torch.tensor([0.5, 0.25], dtype=torch.float64)) * 1.5


def _checkerboard(n, g):
    # 8 of the 16 unit squares of [-2, 2]^2, alternating like a chess board
    cell = torch.randint(0, 8, (n,), generator=g)
    row = cell // 2
    col = 2 * (cell % 2) + (row % 2)
    u = torch.rand(n, 2, generator=g, dtype=torch.float64)
    return torch.stack([col + u[:, 0], row + u[:, 1]], 1) - 2.0


def _mixture(name):
    def make(n, g):
        return sample_mixture(*toy_mixture(name), n, g)
    return make


_MAKERS = {"swiss_roll": _swiss_roll, "two_moons": _two_moons, "checkerboard": _checkerboard,
           "eight_gaussians": _mixture("eight_gaussians"), "gaussian": _mixture("gaussian")}
