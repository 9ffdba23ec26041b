"""Training objectives (DDPM sec. 3.2-3.4).

- ``epsilon_loss``: L_simple = E_{t, x_0, eps} ||eps - eps_theta(x_t, t)||^2 (DDPM eq. 14), t uniform
  on 1..T.  Reported as a mean over elements (per dimension), so it is comparable across data sizes.
- ``objective``: the rows of DDPM Table 2's ablation: predict ``"eps"`` or ``"mu"`` (or ``"x0"`` and ``"v"``,
  :mod:`minddim.parameterization`) and weight ``"simple"`` (unweighted mean squared error of the network output
  against its own target: eps, tilde-mu_t, x_0 or v) or ``"bound"`` (the true variational bound). With the fixed
  variance (``variance="fixed"``) the bound's term is ||tilde-mu_t - mu_theta||^2 / (2 sigma_t^2) with
  sigma_t^2 = beta_t (eq. 8, per dimension like L_simple, and this eq. 8 form at t = 1 too, not the decoder term L_0;
  for eps-prediction this is eq. 12's weighting beta_t^2 / (2 sigma_t^2 alpha_t (1 - bar-alpha_t))); any other
  prediction is first converted to the eps it implies, so mu_theta is eq. 11's. With ``variance="learned"`` (Table 2's
  "L, learned diagonal Sigma" rows, sec. 4.2) the network outputs twice x's channels, the prediction and
  log sigma_theta^2 (as DDPM's official code's 'learned' variance), and the bound's term is in full, in nats per
  dimension: KL(q(x_{t-1} | x_t, x_0) || N(mu_theta, sigma_theta^2)) for t > 1 and the Gaussian decoder's
  -log N(x_0; mu_theta, sigma_theta^2) at t = 1 (the official code's 'kl' loss, there with the discretized decoder
  for images and in bits). A learned variance gets no gradient from the unweighted error, so it takes the bound only.
"""

from __future__ import annotations

import math

import torch

from ._validate import as_time, check_batch, check_tensor
from .diffusion import _noise_like, p_mean, q_posterior, q_sample
from .parameterization import as_eps_model, split_variance, to_eps, v_target
from .schedules import Schedule, as_schedule

PREDICTIONS = ("eps", "mu", "x0", "v")
WEIGHTINGS = ("simple", "bound")
VARIANCES = ("fixed", "learned")


def sample_t(batch: int, T: int, generator: torch.Generator | None = None, device=None) -> torch.Tensor:
    """t ~ Uniform{1, ..., T}, shape (batch,)."""
    return torch.randint(1, T + 1, (batch,), generator=generator, device=device)


def objective(model, x0: torch.Tensor, schedule: Schedule, prediction: str = "eps", weighting: str = "simple",
              t=None, noise: torch.Tensor | None = None, generator: torch.Generator | None = None,
              reduction: str = "mean", variance: str = "fixed") -> torch.Tensor:
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
    if variance not in VARIANCES:
        raise ValueError(f"variance must be one of {VARIANCES}, got {variance!r}")
    if variance == "learned" and weighting != "bound":
        raise ValueError("a learned variance is trained on the bound: weighting must be 'bound' when "
                         "variance='learned' (the unweighted error gives the variance no gradient)")
    B = x0.shape[0]
    t = sample_t(B, schedule.T, generator, x0.device) if t is None else as_time(t, schedule.T, "t")
    if t.dim() == 0:
        t = t.expand(B)
    check_batch(t, x0, "t", "x0")
    noise = _noise_like(noise, x0, generator=generator)
    x_t = q_sample(x0, t, schedule, noise)
    out = model(x_t, t)
    if variance == "learned":
        out, log_var = split_variance(out, x0)
    elif not isinstance(out, torch.Tensor) or out.shape != x0.shape:
        raise ValueError(f"model(x_t, t) must return a tensor shaped like x0 {tuple(x0.shape)}, "
                         f"got {getattr(out, 'shape', type(out).__name__)}")
    if weighting == "simple":
        targets = {"eps": lambda: noise, "mu": lambda: q_posterior(x0, x_t, t, schedule)[0], "x0": lambda: x0,
                   "v": lambda: v_target(x0, noise, t, schedule)}
        per_elem = (out - targets[prediction]()) ** 2
    else:
        mu_theta = out if prediction == "mu" else p_mean(x_t, to_eps(out, x_t, t, schedule, prediction), t, schedule)
        mu_q, var_q = q_posterior(x0, x_t, t, schedule)
        if variance == "fixed":
            per_elem = (mu_q - mu_theta) ** 2 / (2 * schedule.at(schedule.betas, t, x0))
        else:
            per_elem = _learned_variance_term(mu_q, var_q, mu_theta, log_var, t)
    per_sample = per_elem.reshape(B, -1).mean(1)
    return per_sample.mean() if reduction == "mean" else per_sample


def _learned_variance_term(mu_q, var_q, mu_theta, log_var, t) -> torch.Tensor:
    """The bound's term per element, in nats, for p_theta(x_{t-1} | x_t) = N(mu_theta, exp(log_var)): the KL
    0.5 (log_var - log var_q - 1 + (var_q + (mu_q - mu_theta)^2) exp(-log_var)) for t > 1 (DDPM eq. 5's L_{t-1}),
    and at t = 1, where tilde-mu_1 = x_0 and tilde-beta_1 = 0, the decoder's 0.5 (log 2 pi + log_var
    + (x_0 - mu_theta)^2 exp(-log_var)) (L_0 with a Gaussian density, for continuous data)."""
    first = (t == 1).reshape(-1, *([1] * (mu_q.dim() - 1)))
    var_q = torch.where(first, torch.ones_like(var_q), var_q).expand_as(mu_q)
    quad = (mu_q - mu_theta) ** 2 * torch.exp(-log_var)
    kl = 0.5 * (log_var - torch.log(var_q) - 1 + var_q * torch.exp(-log_var) + quad)
    decoder = 0.5 * (math.log(2 * math.pi) + log_var + quad)
    return torch.where(first, decoder, kl)


def epsilon_loss(model, x0: torch.Tensor, schedule: Schedule, t=None, noise: torch.Tensor | None = None,
                 generator: torch.Generator | None = None, reduction: str = "mean") -> torch.Tensor:
    """L_simple (DDPM eq. 14): mean of (eps - eps_theta(sqrt(bar-alpha_t) x_0 + sqrt(1 - bar-alpha_t) eps, t))^2."""
    return objective(model, x0, schedule, "eps", "simple", t, noise, generator, reduction)


def eps_from_mu(model, schedule: Schedule):
    """Wrap a mu-predicting model as an eps model for the samplers: inverting DDPM eq. 11,
    eps = (x_t - sqrt(alpha_t) mu_theta) sqrt(1 - bar-alpha_t) / beta_t
    (:func:`minddim.parameterization.as_eps_model` with ``prediction="mu"``)."""
    return as_eps_model(model, schedule, "mu")
