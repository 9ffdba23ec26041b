"""Training objectives (DDPM sec. 3.2-3.4).

- ``epsilon_loss``: L_simple = E_{t, x_0, eps} ||eps - eps_theta(x_t, t)||^2 (DDPM eq. 14), t uniform
  on 1..T.  Reported as a mean over elements (per dimension), so it is comparable across data sizes.
- ``objective``: four of the six rows of DDPM Table 2's ablation (the fixed-variance ones): predict ``"eps"``
  or ``"mu"`` and weight ``"simple"`` (unweighted mean squared error of the network output) or ``"bound"`` (the true
  variational bound term ||tilde-mu_t - mu_theta||^2 / (2 sigma_t^2) with sigma_t^2 = beta_t, eq. 8, per dimension
  like L_simple, and this eq. 8 form at t = 1 too, not the decoder term L_0; for
  eps-prediction this is eq. 12's weighting beta_t^2 / (2 sigma_t^2 alpha_t (1 - bar-alpha_t))).
"""

from __future__ import annotations

import torch

from ._validate import as_time, check_batch, check_tensor
from .diffusion import _noise_like, p_mean, q_posterior, q_sample
from .schedules import Schedule, as_schedule

PREDICTIONS = ("eps", "mu")
WEIGHTINGS = ("simple", "bound")


def sample_t(batch: int, T: int, generator: torch.Generator | None = None, device=None) -> torch.Tensor:
    """t ~ Uniform{1, ..., T}, shape (batch,)."""
    return torch.randint(1, T + 1, (batch,), generator=generator, device=device)


def objective(model, x0: torch.Tensor, schedule: Schedule, prediction: str = "eps", weighting: str = "simple",
              t=None, noise: torch.Tensor | None = None, generator: torch.Generator | None = None,
              reduction: str = "mean") -> torch.Tensor:
    """A Monte Carlo estimate of a DDPM training objective on the batch ``x0``.

    ``t`` (shape (B,)) and ``noise`` (shape of x0) are drawn from ``generator`` when omitted; pass them
    to compare two models on the same draws.  ``reduction="none"`` returns one value per sample.
    """
    schedule = as_schedule(schedule)
    check_tensor(x0, "x0")
    if prediction not in PREDICTIONS:
        raise ValueError(f"prediction must be one of {PREDICTIONS}, got {prediction!r}")
    if weighting not in WEIGHTINGS:
        raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
    B = x0.shape[0]
    t = sample_t(B, schedule.T, generator, x0.device) if t is None else as_time(t, schedule.T, "t")
    if t.dim() == 0:
        t = t.expand(B)
    check_batch(t, x0, "t", "x0")
    noise = _noise_like(noise, x0, generator=generator)
    x_t = q_sample(x0, t, schedule, noise)
    out = model(x_t, t)
    if not isinstance(out, torch.Tensor) or out.shape != x0.shape:
        raise ValueError(f"model(x_t, t) must return a tensor shaped like x0 {tuple(x0.shape)}, "
                         f"got {getattr(out, 'shape', type(out).__name__)}")
    if weighting == "simple":
        target = noise if prediction == "eps" else q_posterior(x0, x_t, t, schedule)[0]
        per_elem = (out - target) ** 2
    else:
        mu_theta = p_mean(x_t, out, t, schedule) if prediction == "eps" else out
        mu_q = q_posterior(x0, x_t, t, schedule)[0]
        per_elem = (mu_q - mu_theta) ** 2 / (2 * schedule.at(schedule.betas, t, x0))
    per_sample = per_elem.reshape(B, -1).mean(1)
    return per_sample.mean() if reduction == "mean" else per_sample


def epsilon_loss(model, x0: torch.Tensor, schedule: Schedule, t=None, noise: torch.Tensor | None = None,
                 generator: torch.Generator | None = None, reduction: str = "mean") -> torch.Tensor:
    """L_simple (DDPM eq. 14): mean of (eps - eps_theta(sqrt(bar-alpha_t) x_0 + sqrt(1 - bar-alpha_t) eps, t))^2."""
    return objective(model, x0, schedule, "eps", "simple", t, noise, generator, reduction)


def eps_from_mu(model, schedule: Schedule):
    """Wrap a mu-predicting model as an eps model for the samplers: inverting DDPM eq. 11,
    eps = (x_t - sqrt(alpha_t) mu_theta) sqrt(1 - bar-alpha_t) / beta_t."""
    schedule = as_schedule(schedule)

    def eps_model(x_t, t):
        a = schedule.at(schedule.alphas, t, x_t)
        ab = schedule.at(schedule.alpha_bars, t, x_t)
        beta = schedule.at(schedule.betas, t, x_t)
        return (x_t - a.sqrt() * model(x_t, t)) * (1 - ab).sqrt() / beta

    return eps_model
