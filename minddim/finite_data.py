"""Data on finitely many points x_0^1..x_0^K with probabilities q_1..q_K: everything the forward process implies is
then computable, including the true reverse step q(x_{t-1} | x_t) (a Gaussian mixture with one component per point)
and so DDPM's eq. 16, the bound written with the true reverse steps plus the data's entropy:

    E_q[L] = KL(q(x_T) || p(x_T)) + E_q[ sum_{t>=1} KL(q(x_{t-1} | x_t) || p_theta(x_{t-1} | x_t)) ] + H(x_0).
"""

from __future__ import annotations

import math

import torch

from ._validate import as_time, check_positive_int, check_same_shape, check_tensor
from .bound import discretized_gaussian_log_likelihood, reverse_variance
from .diffusion import p_mean, q_sample, q_step
from .schedules import Schedule, as_schedule


def _check_points(points, probs):
    check_tensor(points, "points")
    check_tensor(probs, "probs")
    if points.dim() != 2:
        raise ValueError(f"points must have shape (K, D), one data point per row, got {tuple(points.shape)}")
    if probs.shape != points.shape[:1]:
        raise ValueError(f"probs must have shape (K,) = ({points.shape[0]},), got {tuple(probs.shape)}")
    if (probs <= 0).any() or abs(float(probs.sum()) - 1) > 1e-9:
        raise ValueError(f"probs must be positive and sum to 1, got sum {float(probs.sum()):.12g}")
    return points.double(), probs.double()


def data_entropy(probs: torch.Tensor) -> float:
    """H(x_0) = -sum_k q_k log q_k in nats: the entropy of data on finitely many points with probabilities
    ``probs`` (K,), the last term of DDPM eq. 16."""
    check_tensor(probs, "probs")
    if probs.dim() != 1 or (probs <= 0).any() or abs(float(probs.sum()) - 1) > 1e-9:
        raise ValueError("probs must be a 1-D tensor of positive numbers summing to 1")
    p = probs.double()
    return float(-(p * p.log()).sum())


def _sq_dist(x: torch.Tensor, c: float, points: torch.Tensor) -> torch.Tensor:
    """||x_b - c points_k||^2, shape (B, K), by one matrix product."""
    return (x.square().sum(1, keepdim=True) - 2 * c * x @ points.T + c ** 2 * points.square().sum(1)).clamp(min=0)


def _data_posterior(x_t, t, points, probs, schedule):
    ab = float(schedule.alpha_bars[t])
    return torch.log_softmax(probs.log() - _sq_dist(x_t, math.sqrt(ab), points) / (2 * (1 - ab)), dim=1)


def _reverse_log_prob(x_prev, x_t, t, points, probs, schedule):
    ab, ab_prev, beta = float(schedule.alpha_bars[t]), float(schedule.alpha_bars[t - 1]), float(schedule.betas[t])
    c0 = math.sqrt(ab_prev) * beta / (1 - ab)                                      # tilde-mu_t = c0 x_0 + ct x_t
    ct = math.sqrt(1 - beta) * (1 - ab_prev) / (1 - ab)
    var = (1 - ab_prev) / (1 - ab) * beta                                          # tilde-beta_t
    log_n = -0.5 * (_sq_dist(x_prev - ct * x_t, c0, points) / var + points.shape[1] * math.log(2 * math.pi * var))
    return torch.logsumexp(_data_posterior(x_t, t, points, probs, schedule) + log_n, dim=1)


def data_posterior(x_t: torch.Tensor, t: int, points: torch.Tensor, probs: torch.Tensor,
                   schedule: Schedule) -> torch.Tensor:
    """log q(x_0 = points[k] | x_t) for data on finitely many points, shape (B, K), float64 (Bayes' rule with
    q(x_t | x_0) of DDPM eq. 4): log probs_k + log N(x_t; sqrt(bar-alpha_t) x_0^k, (1 - bar-alpha_t) I),
    normalized over k. ``x_t`` (B, D), ``t`` a single time in 1..T."""
    schedule = as_schedule(schedule)
    points, probs = _check_points(points, probs)
    check_tensor(x_t, "x_t")
    if x_t.dim() != 2 or x_t.shape[1] != points.shape[1]:
        raise ValueError(f"x_t must have shape (B, {points.shape[1]}), got {tuple(x_t.shape)}")
    t = as_time(t, schedule.T, "t")
    if t.dim() != 0:
        raise ValueError("t must be a single time step here")
    return _data_posterior(x_t.double(), int(t), points, probs, schedule)


def reverse_log_prob(x_prev: torch.Tensor, x_t: torch.Tensor, t: int, points: torch.Tensor, probs: torch.Tensor,
                     schedule: Schedule) -> torch.Tensor:
    """log q(x_{t-1} | x_t), the true reverse step of DDPM eq. 16, for data on finitely many points and
    t in 2..T, shape (B,), float64.  It is the forward-process posterior (eqs. 6-7) averaged over what x_t
    says about x_0: sum_k q(x_0^k | x_t) N(x_{t-1}; tilde-mu_t(x_t, x_0^k), tilde-beta_t I), a Gaussian
    mixture with one component per data point."""
    schedule = as_schedule(schedule)
    points, probs = _check_points(points, probs)
    check_tensor(x_prev, "x_prev")
    check_tensor(x_t, "x_t")
    check_same_shape(x_prev, x_t, "x_prev", "x_t")
    if x_t.dim() != 2 or x_t.shape[1] != points.shape[1]:
        raise ValueError(f"x_t must have shape (B, {points.shape[1]}), got {tuple(x_t.shape)}")
    t = as_time(t, schedule.T, "t", low=2)
    if t.dim() != 0:
        raise ValueError("t must be a single time step here")
    return _reverse_log_prob(x_prev.double(), x_t.double(), int(t), points, probs, schedule)


def marginal_vlb_terms(model, points: torch.Tensor, probs: torch.Tensor, n: int, schedule: Schedule, *,
                       variance: str = "beta", generator: torch.Generator | None = None) -> torch.Tensor:
    """The KL terms of DDPM eq. 16 (sec. 4.3, appendix A eqs. 23-26) for data on finitely many points
    ``points`` (K, D) on the 8-bit grid of [-1, 1] with probabilities ``probs`` (K,):

        E_q[L] = KL(q(x_T) || p(x_T)) + E_q[ sum_{t>=1} KL(q(x_{t-1} | x_t) || p_theta(x_{t-1} | x_t)) ] + H(x_0).

    Returns shape (n, T + 1) in nats, laid out as :func:`vlb_terms`: column t - 1 estimates
    E KL(q(x_{t-1} | x_t) || p_theta(x_{t-1} | x_t)) and column T estimates KL(q(x_T) || N(0, I)), each from
    its own draw of x_0 ~ probs and the forward chain, so that the columns' means plus :func:`data_entropy`
    estimate the mean of :func:`vlb` over the data.  For t >= 2 an entry is the single-draw log-ratio
    log q(x_{t-1} | x_t) - log p_theta(x_{t-1} | x_t) at (x_{t-1}, x_t) ~ q (unbiased; one entry may be
    negative, its mean may not).  At t = 1, p_theta(x_0 | x_1) is the discretized decoder (eq. 13) and
    q(x_0 | x_1) lives on the K points, so the entry is that discrete KL given x_1, exact and >= 0."""
    schedule = as_schedule(schedule)
    points, probs = _check_points(points, probs)
    n = check_positive_int(n, "n")
    if (points.abs() > 1 + 1e-9).any() or ((points + 1) * 127.5 - ((points + 1) * 127.5).round()).abs().max() > 1e-6:
        raise ValueError("points must lie on the 8-bit grid {-1, -1 + 2/255, ..., 1} (the decoder of eq. 13)")
    K, D, T = points.shape[0], points.shape[1], schedule.T
    terms = torch.zeros(n, T + 1, dtype=torch.float64)

    def draw_x0():
        return points[torch.multinomial(probs, n, replacement=True, generator=generator)]

    def model_mean(x_t, t):
        eps = model(x_t, torch.full((n,), t, dtype=torch.long)).double()
        return p_mean(x_t, eps, t, schedule), reverse_variance(schedule, t, x_t, variance).reshape(-1)[0]

    with torch.no_grad():
        x0 = draw_x0()                                                             # t = 1: a discrete KL given x_1
        x1 = q_sample(x0, 1, schedule, generator=generator)
        log_q = _data_posterior(x1, 1, points, probs, schedule)                     # (n, K)
        mean, var = model_mean(x1, 1)
        log_p = discretized_gaussian_log_likelihood(points[None].expand(n, K, D), mean[:, None], var).sum(-1)
        terms[:, 0] = (log_q.exp() * (log_q - log_p)).sum(1)
        for t in range(2, T + 1):                                                  # the mixtures q(x_{t-1} | x_t)
            x_prev = q_sample(draw_x0(), t - 1, schedule, generator=generator)
            x_t = q_step(x_prev, t, schedule, generator=generator)
            mean, var = model_mean(x_t, t)
            log_p = -0.5 * ((x_prev - mean).square().sum(1) / var + D * torch.log(2 * math.pi * var))
            terms[:, t - 1] = _reverse_log_prob(x_prev, x_t, t, points, probs, schedule) - log_p
        ab = schedule.alpha_bars[T]                                                # KL(q(x_T) || N(0, I))
        x_T = q_sample(draw_x0(), T, schedule, generator=generator)
        log_qT = torch.logsumexp(probs.log() - _sq_dist(x_T, float(ab.sqrt()), points) / (2 * (1 - ab)),
                                 dim=1) - 0.5 * D * torch.log(2 * math.pi * (1 - ab))
        terms[:, T] = log_qT + 0.5 * (x_T.square().sum(1) + D * math.log(2 * math.pi))
    return terms
