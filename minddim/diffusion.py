"""The forward (noising) process and its posteriors.

DDPM (Ho et al., 2020) eqs. 2, 4, 6, 7 and DDIM (Song et al., 2021) eq. 7, in 1-based time: ``t`` runs
over ``1..T``, ``x_0`` is data.  ``t`` is an int or an integer tensor of shape ``(B,)`` matching the
first dimension of the tensors it is used with.
"""

from __future__ import annotations

import torch

from ._validate import as_time, check_same_shape, check_tensor
from .schedules import Schedule, as_schedule


def _noise_like(noise, x: torch.Tensor, name: str = "noise", generator=None) -> torch.Tensor:
    if noise is None:
        return torch.randn(x.shape, dtype=x.dtype, device=x.device, generator=generator)
    check_tensor(noise, name)
    check_same_shape(noise, x, name, "x")
    return noise


def q_sample(x0: torch.Tensor, t, schedule: Schedule, noise: torch.Tensor | None = None,
             generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw x_t ~ q(x_t | x_0) = N(sqrt(bar-alpha_t) x_0, (1 - bar-alpha_t) I)  (DDPM eq. 4).

    Returns ``sqrt(bar-alpha_t) x0 + sqrt(1 - bar-alpha_t) noise``; ``t`` may be 0 (then x_t = x_0).
    """
    schedule = as_schedule(schedule)
    check_tensor(x0, "x0")
    noise = _noise_like(noise, x0, generator=generator)
    ab = schedule.at(schedule.alpha_bars, t, x0, low=0)
    return ab.sqrt() * x0 + (1 - ab).sqrt() * noise


def q_step(x_prev: torch.Tensor, t, schedule: Schedule, noise: torch.Tensor | None = None,
           generator: torch.Generator | None = None) -> torch.Tensor:
    """One Markov step x_t ~ q(x_t | x_{t-1}) = N(sqrt(1 - beta_t) x_{t-1}, beta_t I)  (DDPM eq. 2)."""
    schedule = as_schedule(schedule)
    check_tensor(x_prev, "x_prev")
    noise = _noise_like(noise, x_prev, generator=generator)
    beta = schedule.at(schedule.betas, t, x_prev)
    return (1 - beta).sqrt() * x_prev + beta.sqrt() * noise


def q_posterior(x0: torch.Tensor, x_t: torch.Tensor, t, schedule: Schedule):
    """Mean and variance of q(x_{t-1} | x_t, x_0) = N(tilde-mu_t, tilde-beta_t I)  (DDPM eqs. 6-7)::

        tilde-mu_t = sqrt(bar-alpha_{t-1}) beta_t / (1 - bar-alpha_t) x_0
                   + sqrt(alpha_t) (1 - bar-alpha_{t-1}) / (1 - bar-alpha_t) x_t,
        tilde-beta_t = (1 - bar-alpha_{t-1}) / (1 - bar-alpha_t) beta_t.

    Returns ``(mean, var)``; ``var`` broadcasts against ``x_t`` (it is 0 at t = 1).
    """
    schedule = as_schedule(schedule)
    check_tensor(x0, "x0")
    check_tensor(x_t, "x_t")
    check_same_shape(x0, x_t, "x0", "x_t")
    # coefficients in float64, cast at use (t = 1 needs 1 - bar-alpha_1 = beta_1 to full precision)
    ab, beta = schedule.alpha_bars, schedule.betas
    ab_prev = torch.cat([ab.new_ones(1), ab[:-1]])
    denom = torch.where(ab < 1, 1 - ab, torch.ones_like(ab))  # index 0 is never used
    coef_x0 = schedule.at(ab_prev.sqrt() * beta / denom, t, x_t)
    coef_xt = schedule.at((1 - beta).sqrt() * (1 - ab_prev) / denom, t, x_t)
    var = schedule.at(schedule.beta_tildes, t, x_t)
    mean = coef_x0 * x0 + coef_xt * x_t
    return mean, var


def q_sigma_posterior(x0: torch.Tensor, x_t: torch.Tensor, t, t_prev, sigma, schedule: Schedule):
    """Mean and variance of DDIM's q_sigma(x_{t_prev} | x_t, x_0)  (DDIM eq. 7, for any t_prev < t).

    mean = sqrt(bar-alpha_prev) x_0 + sqrt(1 - bar-alpha_prev - sigma^2) (x_t - sqrt(bar-alpha_t) x_0)
           / sqrt(1 - bar-alpha_t),  variance = sigma^2.

    ``sigma`` is a number, a (B,) tensor (one sigma per row of ``x_t``, like t) or a tensor broadcasting against
    ``x_t``, with 0 <= sigma^2 <= 1 - bar-alpha_prev.
    With t_prev = t - 1 and sigma^2 = tilde-beta_t this is DDPM's posterior (eqs. 6-7).
    """
    schedule = as_schedule(schedule)
    check_tensor(x0, "x0")
    check_tensor(x_t, "x_t")
    check_same_shape(x0, x_t, "x0", "x_t")
    ab, ab_prev = _alpha_bar_pair(schedule, t, t_prev, x_t)
    sigma2 = _sigma_squared(sigma, ab_prev, x_t)
    mean = ab_prev.sqrt() * x0 + (1 - ab_prev - sigma2).clamp(min=0).sqrt() * (x_t - ab.sqrt() * x0) / (1 - ab).sqrt()
    return mean, sigma2


def predict_x0(x_t: torch.Tensor, eps: torch.Tensor, t, schedule: Schedule) -> torch.Tensor:
    """x_0 predicted from x_t and a noise estimate: (x_t - sqrt(1 - bar-alpha_t) eps) / sqrt(bar-alpha_t)
    (DDPM eq. 4 solved for x_0; DDIM eq. 9)."""
    schedule = as_schedule(schedule)
    check_tensor(x_t, "x_t")
    check_tensor(eps, "eps")
    check_same_shape(eps, x_t, "eps", "x_t")
    ab = schedule.at(schedule.alpha_bars, t, x_t)
    return _x0_from_eps(x_t, eps, ab.sqrt(), (1 - ab).sqrt())


def _x0_from_eps(x_t: torch.Tensor, eps: torch.Tensor, sqrt_ab, sqrt_one_minus_ab) -> torch.Tensor:
    """DDIM eq. 9 on validated inputs, given sqrt(bar-alpha_t) and sqrt(1 - bar-alpha_t)."""
    return (x_t - sqrt_one_minus_ab * eps) / sqrt_ab


def predict_eps(x_t: torch.Tensor, x0: torch.Tensor, t, schedule: Schedule) -> torch.Tensor:
    """The noise implied by x_t and x_0: (x_t - sqrt(bar-alpha_t) x_0) / sqrt(1 - bar-alpha_t)  (DDPM eq. 4)."""
    schedule = as_schedule(schedule)
    check_tensor(x_t, "x_t")
    check_tensor(x0, "x0")
    check_same_shape(x0, x_t, "x0", "x_t")
    ab = schedule.at(schedule.alpha_bars, t, x_t)
    return (x_t - ab.sqrt() * x0) / (1 - ab).sqrt()


def p_mean(x_t: torch.Tensor, eps: torch.Tensor, t, schedule: Schedule) -> torch.Tensor:
    """Mean of the reverse step p_theta(x_{t-1} | x_t) for a noise estimate ``eps`` (DDPM eq. 11):
    mu_theta = (x_t - beta_t / sqrt(1 - bar-alpha_t) eps) / sqrt(alpha_t), which is the posterior mean
    tilde-mu_t(x_t, x0_hat) at the predicted x0_hat = predict_x0(x_t, eps)."""
    return q_posterior(predict_x0(x_t, eps, t, schedule), x_t, t, schedule)[0]


# -- helpers -----------------------------------------------------------------------------------
def _time_pair(schedule: Schedule, t, t_prev):
    """Validated long tensors (t, t_prev) with 1 <= t <= T and 0 <= t_prev < t."""
    tt = as_time(t, schedule.T, "t")
    tp = as_time(t_prev, schedule.T, "t_prev", low=0)
    if tp.dim() == 1 and tt.dim() == 1 and tp.shape != tt.shape:
        raise ValueError(f"t_prev has shape {tuple(tp.shape)} but t has shape {tuple(tt.shape)}")
    if (tp >= tt).any():
        raise ValueError("t_prev must be smaller than t (the reverse process goes from t to an earlier t_prev)")
    return tt, tp


def _alpha_bar_pair(schedule: Schedule, t, t_prev, x: torch.Tensor):
    """(bar-alpha_t, bar-alpha_{t_prev}) shaped to broadcast against x."""
    tt, tp = _time_pair(schedule, t, t_prev)
    return schedule.at(schedule.alpha_bars, tt, x), schedule.at(schedule.alpha_bars, tp, x, name="t_prev", low=0)


def _sigma_squared(sigma, ab_prev: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """sigma^2, checked: a number, a (B,) tensor (one sigma per row of x, like t, e.g. from ``ddim_sigma``
    with a (B,) t) or a tensor that broadcasts to x's shape."""
    if isinstance(sigma, torch.Tensor) and (sigma.is_complex() or sigma.dtype == torch.bool):
        raise TypeError(f"sigma must be a real number or a real tensor, got dtype {sigma.dtype}")
    s = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
    if s.dim() == 1 and x.dim() > 1 and s.shape[0] == x.shape[0] and s.shape[0] != 1:
        s = s.reshape(-1, *([1] * (x.dim() - 1)))
    try:
        fits = torch.broadcast_shapes(s.shape, x.shape) == x.shape
    except RuntimeError:
        fits = False
    if not fits:
        raise ValueError(f"sigma has shape {tuple(s.shape)}, which fits neither one sigma per row of x_t "
                         f"(shape ({x.shape[0] if x.dim() else 1},)) nor x_t's shape {tuple(x.shape)}")
    if not torch.isfinite(s).all() or (s < 0).any():
        raise ValueError("sigma must be finite and >= 0")
    s2 = s * s
    if (s2 > (1 - ab_prev) * (1 + 1e-6) + 1e-12).any():
        raise ValueError("sigma^2 must not exceed 1 - alpha_bar[t_prev] (DDIM eq. 7 needs a real square root)")
    return s2
