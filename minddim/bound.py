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

from ._validate import as_time, check_positive_int, check_same_shape, check_tensor
from .diffusion import _time_pair, p_mean, predict_x0, q_posterior, q_sample, q_step
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


def progressive_rate(terms: torch.Tensor) -> torch.Tensor:
    """The rate of DDPM's progressive code (sec. 4.3, Algorithms 3-4): from the bound's terms L_0..L_T
    (the last axis of :func:`vlb_terms`' output, index k holding L_k), the codelength received by the
    time x_t is decoded, rate[t] = L_T + sum_{s > t} L_{s-1} = sum_{k >= t} L_k, for t = 0..T.

    Sending x_T costs L_T (the prior term), then each x_{s-1} given x_s costs L_{s-1} with relative-entropy
    coding; rate[T] = L_T and rate[0] is the whole bound (x_0 itself, through the decoder L_0). Same shape
    and units as ``terms``."""
    check_tensor(terms, "terms")
    if terms.dim() < 1 or terms.shape[-1] < 2:
        raise ValueError(f"terms must have a last axis L_0..L_T of length T + 1 >= 2, got shape {tuple(terms.shape)}")
    return terms.flip(-1).cumsum(-1).flip(-1)


def progressive_distortion(model, x0: torch.Tensor, schedule: Schedule, ts, *, generator: torch.Generator | None = None,
                           clip_x0: float | None = None, scale: float = 127.5) -> torch.Tensor:
    """The distortion of DDPM's progressive code (sec. 4.3, Fig. 5): at each t in ``ts``, the RMSE
    sqrt(||x_0 - x0_hat||^2 / D) of the receiver's estimate x0_hat = predict_x0(x_t, model(x_t, t)) from
    x_t ~ q(x_t | x_0), averaged over the batch in squares, on the scale of ``scale`` (127.5: data in [-1, 1]
    measured in gray levels of [0, 255]). At t = 0 the receiver has x_0 itself: distortion 0. Returns a
    float64 tensor of shape (len(ts),); one model evaluation per t."""
    schedule = as_schedule(schedule)
    check_tensor(x0, "x0")
    out = []
    with torch.no_grad():
        for t in ts:
            t = int(t)
            if t == 0:
                out.append(0.0)
                continue
            x_t = q_sample(x0, t, schedule, generator=generator)
            x0_hat = predict_x0(x_t, model(x_t, torch.full((x0.shape[0],), t, dtype=torch.long, device=x0.device)),
                                t, schedule)
            if clip_x0 is not None:
                x0_hat = x0_hat.clamp(-clip_x0, clip_x0)
            out.append(float(((x0_hat - x0).double() * scale).square().mean().sqrt()))
    return torch.tensor(out, dtype=torch.float64)


# -- the bound against the true reverse step (DDPM eq. 16), for data on finitely many points ------------------
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
