"""The variational bound on the negative log-likelihood (DDPM eq. 5, appendix A):

    L = E_q[ L_T + sum_{t=2}^T L_{t-1} + L_0 ],
    L_T     = KL(q(x_T | x_0) || N(0, I)),
    L_{t-1} = KL(q(x_{t-1} | x_t, x_0) || p_theta(x_{t-1} | x_t)),     x_t ~ q(x_t | x_0),
    L_0     = -log p_theta(x_0 | x_1),

with p_theta(x_{t-1} | x_t) = N(mu_theta(x_t, t), sigma_t^2 I), mu_theta from eq. 11.  For 8-bit images
scaled to [-1, 1], L_0 is the discretized Gaussian decoder (eq. 13); for continuous data it is a Gaussian
density.  All quantities are in nats, summed over dimensions, one value per sample.
"""

from __future__ import annotations

import math

import torch

from ._validate import as_time, check_tensor
from .diffusion import _time_pair, p_mean, predict_x0, q_posterior, q_sample
from .schedules import Schedule, as_schedule

VARIANCES = ("beta_tilde", "beta")
DECODERS = ("discretized", "gaussian")


def normal_kl(mean1, var1, mean2, var2) -> torch.Tensor:
    """KL(N(mean1, var1) || N(mean2, var2)) elementwise, in nats:
    0.5 (log(var2/var1) + (var1 + (mean1 - mean2)^2) / var2 - 1)."""
    mean1, var1, mean2, var2 = (torch.as_tensor(v) for v in (mean1, var1, mean2, var2))
    if (var1 <= 0).any() or (var2 <= 0).any():
        raise ValueError("variances must be > 0")
    return 0.5 * (torch.log(var2 / var1) + (var1 + (mean1 - mean2) ** 2) / var2 - 1)


def ddim_gamma(schedule: Schedule, t, t_prev, sigma) -> torch.Tensor:
    """The weight gamma of DDIM's Theorem 1 (sec. 3.2) for one step t -> t_prev < t, strided or not (app. C.1), in
    float64: the term of J_sigma for that step is gamma ||eps - eps_theta(x_t, t)||^2 (+ a constant), eps being the
    noise in x_t = sqrt(bar-alpha_t) x_0 + sqrt(1 - bar-alpha_t) eps.

    - t_prev >= 1: KL(q_sigma(x_{t_prev} | x_t, x_0) || p_theta(x_{t_prev} | x_t)) with both of DDIM eq. 7's form
      (eq. 10; app. C.1's q_{sigma,tau} and p_theta^{(tau_i)} for t = tau_i, t_prev = tau_{i-1}), p_theta's x_0
      replaced by f_theta(x_t) (eq. 9).  Equal variances sigma^2, means differing by c (x_0 - f_theta), so
      gamma = c^2 (1 - bar-alpha_t) / (2 sigma^2 bar-alpha_t),
      c = sqrt(bar-alpha_prev) - sqrt(1 - bar-alpha_prev - sigma^2) sqrt(bar-alpha_t / (1 - bar-alpha_t)) > 0;
      with t_prev = t - 1 it is Theorem 1's gamma_t, and with eq. 16's sigma at eta = 1 it is DDPM eq. 12's weight
      beta'^2 / (2 sigma^2 alpha' (1 - bar-alpha_t)) for the step's beta' = 1 - bar-alpha_t / bar-alpha_prev.
    - t_prev = 0: -log p_theta(x_0 | x_t) for the Gaussian decoder N(f_theta(x_t), sigma^2 I) (eq. 10 at t = 1; app.
      C.1 eq. 57 at tau_1 and at every t of the star graph, outside tau), whose constant is (d/2) log(2 pi sigma^2):
      gamma = (1 - bar-alpha_t) / (2 sigma^2 bar-alpha_t), i.e. c = 1.  Here sigma is the decoder's free standard
      deviation, not eq. 16's (which is 0 on a last step to t = 0).

    ``t`` and ``t_prev`` are integers or (B,) integer tensors; ``sigma`` a number or a tensor broadcasting against
    them, > 0 (Theorem 1 assumes sigma > 0; at sigma = 0 the KL is infinite), with sigma^2 <= 1 - bar-alpha_prev
    when t_prev >= 1.  The paper's own proof (app. B) writes the positive but not exact weight 1 / (2 d sigma^2 alpha_t).
    """
    schedule = as_schedule(schedule)
    tt, tp = _time_pair(schedule, t, t_prev)
    if isinstance(sigma, bool) or (isinstance(sigma, torch.Tensor) and (sigma.is_complex() or sigma.dtype == torch.bool)):
        raise TypeError(f"sigma must be a real number or a real tensor, got {sigma!r}")
    try:
        s = torch.as_tensor(sigma, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(f"sigma must be a real number or a real tensor, got {type(sigma).__name__}") from None
    if not torch.isfinite(s).all() or (s <= 0).any():
        raise ValueError("sigma must be finite and > 0 (Theorem 1 assumes sigma > 0; at sigma = 0 the KL is infinite)")
    try:
        shape = torch.broadcast_shapes(tt.shape, tp.shape, s.shape)
    except RuntimeError:
        raise ValueError(f"sigma has shape {tuple(s.shape)}, which does not broadcast against t's shape "
                         f"{tuple(tt.shape)}") from None
    ab, ab_prev = schedule.alpha_bars[tt], schedule.alpha_bars[tp]
    s2 = s * s
    chain = tp > 0
    if ((s2 > (1 - ab_prev) * (1 + 1e-6) + 1e-12) & chain).any():
        raise ValueError("sigma^2 must not exceed 1 - alpha_bar[t_prev] when t_prev >= 1 (DDIM eq. 7 needs a real "
                         "square root)")
    direction = torch.where(chain, (1 - ab_prev - s2).clamp(min=0).sqrt(), torch.zeros_like(s2))
    c = ab_prev.sqrt() - direction * (ab / (1 - ab)).sqrt()
    return (c**2 * (1 - ab) / (2 * s2 * ab)).expand(shape)


def discretized_gaussian_log_likelihood(x: torch.Tensor, mean: torch.Tensor, var) -> torch.Tensor:
    """log p(x) for 8-bit data on the grid {-1, -1 + 2/255, ..., 1} under N(mean, var) integrated over
    each pixel's bin [x - 1/255, x + 1/255], the outermost bins extended to -inf and +inf (DDPM eq. 13).
    Elementwise; the probabilities of the 256 bins sum to one."""
    check_tensor(x, "x")
    if (x.abs() > 1 + 1e-6).any():
        raise ValueError("x must be scaled to [-1, 1]")
    std = torch.as_tensor(var, dtype=x.dtype, device=x.device).sqrt()
    if (std <= 0).any():
        raise ValueError("var must be > 0")
    centered = x - mean
    upper = torch.special.ndtr((centered + 1 / 255) / std)
    lower = torch.special.ndtr((centered - 1 / 255) / std)
    log_cdf_upper = torch.special.log_ndtr((centered + 1 / 255) / std)
    log_sf_lower = torch.special.log_ndtr(-(centered - 1 / 255) / std)
    log_mid = torch.log((upper - lower).clamp(min=1e-12))
    return torch.where(x < -0.999, log_cdf_upper, torch.where(x > 0.999, log_sf_lower, log_mid))


def reverse_variance(schedule: Schedule, t, x: torch.Tensor, variance: str = "beta_tilde") -> torch.Tensor:
    """sigma_t^2 of p_theta(x_{t-1} | x_t) (DDPM sec. 3.2): ``"beta"`` (sigma_t^2 = beta_t) or
    ``"beta_tilde"`` (sigma_t^2 = tilde-beta_t, with tilde-beta_1 = 0 replaced by tilde-beta_2 so that the
    decoder at t = 1 has a positive variance, as in the reference code)."""
    if variance == "beta":
        return schedule.at(schedule.betas, t, x)
    if variance != "beta_tilde":
        raise ValueError(f"variance must be one of {VARIANCES}, got {variance!r}")
    bt = schedule.beta_tildes.clone()
    bt[1] = bt[2] if schedule.T >= 2 else schedule.betas[1]
    return schedule.at(bt, t, x)


def prior_term(x0: torch.Tensor, schedule: Schedule) -> torch.Tensor:
    """L_T = KL(q(x_T | x_0) || N(0, I)), summed over dimensions, shape (B,)."""
    schedule = as_schedule(schedule)
    check_tensor(x0, "x0")
    ab = schedule.alpha_bars[-1].to(x0.dtype)
    kl = normal_kl(ab.sqrt() * x0, (1 - ab).expand_as(x0), torch.zeros_like(x0), torch.ones_like(x0))
    return kl.reshape(x0.shape[0], -1).sum(1)


def vlb_terms(model, x0: torch.Tensor, schedule: Schedule, *, variance: str = "beta_tilde",
              decoder: str = "discretized", generator: torch.Generator | None = None,
              clip_x0: float | None = None, progress: bool = False, times=None) -> torch.Tensor:
    """All terms of the bound for each sample: shape (B, T + 1), column k holding L_k in nats
    (L_0 the decoder, L_1 .. L_{T-1} the KL terms, L_T the prior).  Each L_{t-1} uses its own draw
    x_t ~ q(x_t | x_0), so every column is an unbiased single-sample estimate and their sum estimates
    the bound.  ``clip_x0`` clamps the predicted x_0 (images).

    ``times`` (a sequence of t in 1..T) computes only the columns L_{t-1} of those t, one model evaluation
    per t and sample instead of T; the others hold NaN (so that a sum over them cannot pass for the bound),
    except L_T, which needs no model and is always computed."""
    schedule = as_schedule(schedule)
    check_tensor(x0, "x0")
    if decoder not in DECODERS:
        raise ValueError(f"decoder must be one of {DECODERS}, got {decoder!r}")
    B, T = x0.shape[0], schedule.T
    if times is None:
        terms = x0.new_zeros(B, T + 1, dtype=torch.float64)
        ts = range(1, T + 1)
    else:
        try:
            chosen = torch.as_tensor(times).reshape(-1)
        except (TypeError, ValueError, RuntimeError):
            raise TypeError("times must be a sequence of integer time steps") from None
        if chosen.numel() == 0:
            raise ValueError(f"times must hold at least one time step in 1..{T}")
        if chosen.dtype in (torch.int32, torch.int16, torch.int8, torch.uint8):
            chosen = chosen.long()
        ts = sorted(set(as_time(chosen, T, "times").tolist()))
        terms = torch.full((B, T + 1), float("nan"), dtype=torch.float64, device=x0.device)
    if progress:
        from tqdm import tqdm

        ts = tqdm(ts, desc="bound terms", leave=False)
    with torch.no_grad():
        for t in ts:
            x_t = q_sample(x0, t, schedule, generator=generator)
            tb = torch.full((B,), t, dtype=torch.long, device=x0.device)
            eps = model(x_t, tb)
            if clip_x0 is not None:
                x0_hat = predict_x0(x_t, eps, t, schedule).clamp(-clip_x0, clip_x0)
                mean = q_posterior(x0_hat, x_t, t, schedule)[0]
            else:
                mean = p_mean(x_t, eps, t, schedule)
            var = reverse_variance(schedule, t, x0, variance)
            if t == 1:
                if decoder == "discretized":
                    ll = discretized_gaussian_log_likelihood(x0, mean, var)
                else:
                    ll = -0.5 * (math.log(2 * math.pi) + var.log() + (x0 - mean) ** 2 / var)
                terms[:, 0] = -ll.reshape(B, -1).sum(1).double()
            else:
                q_mean, q_var = q_posterior(x0, x_t, t, schedule)
                kl = normal_kl(q_mean, q_var.expand_as(q_mean), mean, var.expand_as(mean))
                terms[:, t - 1] = kl.reshape(B, -1).sum(1).double()
    terms[:, T] = prior_term(x0, schedule).double()
    return terms


def vlb(model, x0: torch.Tensor, schedule: Schedule, **kwargs) -> torch.Tensor:
    """The bound L (DDPM eq. 5) for each sample in nats, shape (B,): the sum of :func:`vlb_terms`."""
    return vlb_terms(model, x0, schedule, **kwargs).sum(1)


def bits_per_dim(nats: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
    """Convert per-sample nats to bits per dimension: nats / (D ln 2), D = number of elements per sample."""
    D = x0[0].numel()
    return nats / (D * math.log(2))
