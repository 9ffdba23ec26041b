"""A plain training loop for any eps-model and any data: Adam, an exponential moving average (EMA) of the
weights (DDPM appendix B uses decay 0.9999), a seed, a progress bar and the loss history."""

from __future__ import annotations

import copy
from typing import Callable, NamedTuple

import torch

from ._validate import check_positive_int
from .losses import objective
from .schedules import Schedule, as_schedule


class EMA:
    """Shadow weights theta_ema <- decay theta_ema + (1 - decay) theta after each step."""

    def __init__(self, model: torch.nn.Module, decay: float = 0.999):
        if not 0 <= decay < 1:
            raise ValueError(f"decay must lie in [0, 1), got {decay}")
        self.decay = decay
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        for e, p in zip(self.model.parameters(), model.parameters()):
            e.lerp_(p.detach(), 1 - self.decay)
        for e, b in zip(self.model.buffers(), model.buffers()):
            e.copy_(b)


class TrainResult(NamedTuple):
    model: torch.nn.Module      # the trained network (last iterate)
    ema: torch.nn.Module        # its exponential moving average: use this one for sampling
    losses: list                # the loss of every step


def train(model: torch.nn.Module, data, schedule: Schedule, *, steps: int, batch_size: int = 256,
          lr: float = 1e-3, ema_decay: float = 0.999, seed: int = 0, prediction: str = "eps",
          weighting: str = "simple", progress: bool = True, loss_fn: Callable | None = None) -> TrainResult:
    """Train ``model`` on ``data`` for ``steps`` Adam steps of the objective (default L_simple).

    ``data`` is a tensor of examples (minibatches drawn with replacement) or a callable
    ``data(n, generator) -> tensor`` giving fresh draws.  Everything random comes from ``seed``.
    ``loss_fn(model, x0, schedule, generator)`` replaces the objective if given.
    """
    schedule = as_schedule(schedule)
    steps = check_positive_int(steps, "steps")
    batch_size = check_positive_int(batch_size, "batch_size")
    if not (isinstance(data, torch.Tensor) or callable(data)):
        raise TypeError("data must be a tensor of examples or a callable (n, generator) -> tensor")
    if isinstance(data, torch.Tensor) and data.shape[0] == 0:
        raise ValueError("data must hold at least one example")
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    ema = EMA(model, ema_decay)
    losses = []
    it = range(steps)
    if progress:
        from tqdm import tqdm

        it = tqdm(it, desc="training", leave=False)
    model.train()
    for _ in it:
        if isinstance(data, torch.Tensor):
            x0 = data[torch.randint(0, data.shape[0], (batch_size,), generator=g)]
        else:
            x0 = data(batch_size, g)
        if loss_fn is None:
            loss = objective(model, x0, schedule, prediction, weighting, generator=g)
        else:
            loss = loss_fn(model, x0, schedule, g)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        ema.update(model)
        losses.append(float(loss.detach()))
        if progress and len(losses) % 50 == 0:
            it.set_postfix(loss=f"{sum(losses[-50:]) / 50:.4f}")
    model.eval()
    return TrainResult(model, ema.model, losses)


def train_toy(name: str = "eight_gaussians", steps: int = 3000, seed: int = 0, progress: bool = True,
              **kwargs) -> TrainResult:
    """The course's recipe for a 2-D toy model: a fresh :class:`~minddim.models.MLP` (initialized from
    ``seed``), L_simple on 100k points of ``toy_data(name)``, batch 512, Adam at 3e-3, EMA decay 0.995,
    the linear schedule with T = 1000. About 20 s for 3000 steps on 2 CPU cores; on the eight Gaussians
    the EMA model then comes within about 1.5% of the exact loss floor (tests/test_losses.py).
    ``kwargs`` (e.g. ``prediction``, ``weighting``) go to :func:`train`."""
    from .data import toy_data
    from .models import MLP

    torch.manual_seed(seed)
    model = MLP()
    data = toy_data(name, 100_000, seed=seed + 1)
    return train(model, data, Schedule.linear(), steps=steps, batch_size=512, lr=3e-3, ema_decay=0.995, seed=seed,
                 progress=progress, **kwargs)
