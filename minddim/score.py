"""The score view that both papers rest on: scores and noise, Tweedie's formula, denoising score
matching, Langevin dynamics, and the probability-flow ODE in DDIM's variables.

- **Score and noise.** For x_t = sqrt(bar-alpha_t) x_0 + sqrt(1 - bar-alpha_t) eps, the score of the
  noisy marginal is grad log q_t(x_t) = -E[eps | x_t] / sqrt(1 - bar-alpha_t), so an eps-model is a
  score model up to a known factor (DDPM sec. 3.2, after eq. 11: Algorithm 2 "resembles Langevin dynamics
  with eps_theta as a learned gradient of the data density").
- **Tweedie's formula** (Robbins 1956; Efron 2011): E[x_0 | x_t] = (x_t + (1 - bar-alpha_t) grad log
  q_t(x_t)) / sqrt(bar-alpha_t), which is :func:`minddim.predict_x0` written with the score.
- **Denoising score matching** (Vincent 2011; Song & Ermon 2019, eq. 2) at the noise level of time t:
  l(t) = 1/2 E ||s(x_t, t) - grad log q(x_t | x_0)||^2, grad log q(x_t | x_0) = -eps / sqrt(1 - bar-alpha_t).
  With s = -eps_theta / sqrt(1 - bar-alpha_t), L_simple's term at t is 2 (1 - bar-alpha_t) l(t): L_simple
  (DDPM eq. 14) has the form of Song & Ermon's objective (their eq. 6) with their lambda(sigma) = sigma^2,
  sigma^2 = 1 - bar-alpha_t, up to the constant 2 (eq. 2's 1/2), each term their eq. 2 under DDPM's q(x_t | x_0)
  (mean sqrt(bar-alpha_t) x_0) in place of their N(x, sigma^2 I); DDPM sec. 3.4 says its "t > 1 cases correspond
  to an unweighted version of Eq. (12), analogous to the loss weighting used by the NCSN denoising score matching
  model" (its t = 1 case approximates the decoder term L_0). Eq. 12 itself
  (the bound's term) carries the weight beta_t^2 / (2 sigma_t^2 alpha_t (1 - bar-alpha_t)), i.e.
  beta_t / alpha_t per unit of l(t) when sigma_t^2 = beta_t.
- **Langevin dynamics** (unadjusted): x <- x + delta/2 grad log p(x) + sqrt(delta) z, and annealed
  Langevin dynamics over a ladder of noise levels (Song & Ermon 2019, Algorithm 1).
- **The probability-flow ODE** in DDIM's variables (DDIM eq. 14): x-bar = x / sqrt(bar-alpha),
  sigma = sqrt((1 - bar-alpha) / bar-alpha), d x-bar = eps(x-bar / sqrt(sigma^2 + 1), sigma) d sigma.
  DDIM's eta = 0 step is its Euler step (eq. 13; :func:`euler_step`), :func:`pf_euler_step` the Euler step
  in the VE SDE's time that DDIM contrasts with it (eq. 15), :func:`minddim.heun` its second-order step, and
  :func:`pf_ode_solve` its reference solution for models defined between the schedule's integer times.

Time is the DDPM paper's 1-based t; a score function here is any callable returning a tensor shaped like x.
"""

from __future__ import annotations

import math
import numbers

import torch

from ._validate import as_time, check_batch, check_positive_int, check_same_shape, check_tensor
from .diffusion import _alpha_bar_pair, _noise_like
from .schedules import Schedule, as_schedule


# -- score <-> eps, Tweedie ---------------------------------------------------------------------------
def score_from_eps(eps: torch.Tensor, t, schedule: Schedule) -> torch.Tensor:
    """grad log q_t(x_t) = -eps / sqrt(1 - bar-alpha_t) for the noise estimate ``eps`` of x_t at time t
    (exact when eps = E[eps | x_t], by Tweedie's formula; DDPM sec. 3.2 only says Algorithm 2 "resembles"
    Langevin dynamics with eps_theta as a learned gradient of the data density)."""
    schedule = as_schedule(schedule)
    check_tensor(eps, "eps")
    return -eps / (1 - schedule.at(schedule.alpha_bars, t, eps)).sqrt()


def eps_from_score(score: torch.Tensor, t, schedule: Schedule) -> torch.Tensor:
    """The noise estimate of a score: eps = -sqrt(1 - bar-alpha_t) grad log q_t(x_t)."""
    schedule = as_schedule(schedule)
    check_tensor(score, "score")
    return -(1 - schedule.at(schedule.alpha_bars, t, score)).sqrt() * score


def tweedie(x_t: torch.Tensor, score: torch.Tensor, t, schedule: Schedule) -> torch.Tensor:
    """Tweedie's formula: E[x_0 | x_t] = (x_t + (1 - bar-alpha_t) grad log q_t(x_t)) / sqrt(bar-alpha_t).

    With ``score = score_from_eps(eps, t, schedule)`` this is ``predict_x0(x_t, eps, t, schedule)``
    (DDIM eq. 9): predicting x_0 from an eps-model is estimating the posterior mean."""
    schedule = as_schedule(schedule)
    check_tensor(x_t, "x_t")
    check_tensor(score, "score")
    check_same_shape(score, x_t, "score", "x_t")
    ab = schedule.at(schedule.alpha_bars, t, x_t)
    return (x_t + (1 - ab) * score) / ab.sqrt()


def score_model(model, schedule: Schedule):
    """Wrap an eps-model ``model(x_t, t)`` as a score function ``score(x_t, t) = -model(x_t, t) /
    sqrt(1 - bar-alpha_t)``; ``t`` may be an int (broadcast to the batch) or a (B,) integer tensor."""
    schedule = as_schedule(schedule)

    def score(x_t: torch.Tensor, t) -> torch.Tensor:
        t = as_time(t, schedule.T, "t")
        t_batch = t.expand(x_t.shape[0]) if t.dim() == 0 else t
        return score_from_eps(_called(model, x_t, t_batch, "model"), t_batch, schedule)

    return score


# -- denoising score matching ---------------------------------------------------------------------------
def dsm_loss(score, x0: torch.Tensor, t, schedule: Schedule, noise: torch.Tensor | None = None,
             generator: torch.Generator | None = None, reduction: str = "mean") -> torch.Tensor:
    """Denoising score matching at the noise level of time t (Vincent 2011; Song & Ermon 2019, eq. 2):
    1/2 mean ||score(x_t, t) + eps / sqrt(1 - bar-alpha_t)||^2 over x_0, eps, with x_t from DDPM eq. 4.

    ``score(x_t, t)`` takes ``t`` of shape (B,); ``t`` is an int or a (B,) tensor. Like
    :func:`minddim.epsilon_loss` the square is averaged over elements, so on the same draws
    ``epsilon_loss(model) == 2 (1 - bar-alpha_t) dsm_loss(score_model(model))``.
    ``reduction="none"`` gives one value per sample."""
    schedule = as_schedule(schedule)
    check_tensor(x0, "x0")
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
    B = x0.shape[0]
    t = as_time(t, schedule.T, "t")
    t = t.expand(B) if t.dim() == 0 else t
    check_batch(t, x0, "t", "x0")
    noise = _noise_like(noise, x0, generator=generator)
    ab = schedule.at(schedule.alpha_bars, t, x0)
    x_t = ab.sqrt() * x0 + (1 - ab).sqrt() * noise
    s = _called(score, x_t, t, "score")
    per_sample = (0.5 * (s + noise / (1 - ab).sqrt()) ** 2).reshape(B, -1).mean(1)
    return per_sample.mean() if reduction == "mean" else per_sample


# -- Langevin dynamics -----------------------------------------------------------------------------------
def langevin_step(x: torch.Tensor, score: torch.Tensor, step_size, noise: torch.Tensor) -> torch.Tensor:
    """One step of unadjusted Langevin dynamics: x + step_size / 2 * score + sqrt(step_size) * noise
    (Song & Ermon 2019, eq. 4), with ``score`` = grad log p(x) and ``noise`` ~ N(0, I)."""
    check_tensor(x, "x")
    check_tensor(score, "score")
    check_same_shape(score, x, "score", "x")
    check_tensor(noise, "noise")
    check_same_shape(noise, x, "noise", "x")
    step_size = _check_step_size(step_size)
    return x + 0.5 * step_size * score + math.sqrt(step_size) * noise


def langevin(score, x: torch.Tensor, step_size, n_steps: int, *, generator: torch.Generator | None = None,
             progress: bool = False, trajectory: bool = False):
    """Run ``n_steps`` of unadjusted Langevin dynamics from ``x`` with the score function ``score(x)``.

    As step_size -> 0 and n_steps -> infinity the chain's law tends to p; at a fixed step size it tends to
    a slightly wider law (for N(m, C): covariance C (I - step_size C^{-1} / 4)^{-1}, see
    :func:`gaussian_langevin_covariance`). Returns the last x, or every x as a
    ``(n_steps + 1, *x.shape)`` tensor with ``trajectory=True``."""
    check_tensor(x, "x")
    step_size = _check_step_size(step_size)
    n_steps = check_positive_int(n_steps, "n_steps")
    steps = range(n_steps)
    if progress:
        from tqdm import tqdm

        steps = tqdm(steps, desc=f"Langevin ({n_steps} steps)", leave=False)
    xs = [x]
    with torch.no_grad():
        for _ in steps:
            s = _called(score, x, None, "score")
            x = langevin_step(x, s, step_size, torch.randn(x.shape, dtype=x.dtype, generator=generator))
            if trajectory:
                xs.append(x)
    return torch.stack(xs) if trajectory else x


def annealed_langevin(score, x: torch.Tensor, levels, sigmas, steps_per_level: int, epsilon, *,
                      generator: torch.Generator | None = None, progress: bool = False, trajectory: bool = False):
    """Annealed Langevin dynamics (Song & Ermon 2019, Algorithm 1).

    For each noise level i = 1..L in turn (``sigmas`` decreasing, ``levels[i]`` what ``score(x, level)``
    takes as its second argument, e.g. a time t), run ``steps_per_level`` Langevin steps with step size
    alpha_i = ``epsilon`` * sigma_i^2 / sigma_L^2 on the score at that level. With an eps-model use
    ``score_model(model, schedule)``, times t as levels and sigma_t = sqrt(1 - bar-alpha_t). Returns the
    last x, or x after each level as an ``(L + 1, *x.shape)`` tensor with ``trajectory=True``."""
    check_tensor(x, "x")
    sig = torch.as_tensor(sigmas, dtype=torch.float64)
    levels = list(levels.tolist() if isinstance(levels, torch.Tensor) else levels)
    if sig.dim() != 1 or sig.numel() == 0 or not torch.isfinite(sig).all() or (sig <= 0).any():
        raise ValueError("sigmas must be a non-empty 1-D sequence of positive, finite noise levels")
    if (sig[1:] >= sig[:-1]).any():
        raise ValueError("sigmas must be strictly decreasing (Algorithm 1 goes from the noisiest level to the cleanest)")
    if len(levels) != sig.numel():
        raise ValueError(f"levels must have one entry per sigma ({sig.numel()}), got {len(levels)}")
    steps_per_level = check_positive_int(steps_per_level, "steps_per_level")
    epsilon = _check_step_size(epsilon, "epsilon")
    plan = [(level, epsilon * float(s / sig[-1]) ** 2) for level, s in zip(levels, sig)]
    if progress:
        from tqdm import tqdm

        plan = tqdm(plan, desc=f"annealed Langevin ({len(plan)} levels x {steps_per_level})", leave=False)
    xs = [x]
    with torch.no_grad():
        for level, alpha in plan:
            for _ in range(steps_per_level):
                s = _called(score, x, level, "score")
                x = langevin_step(x, s, alpha, torch.randn(x.shape, dtype=x.dtype, generator=generator))
            if trajectory:
                xs.append(x)
    return torch.stack(xs) if trajectory else x


def gaussian_langevin_covariance(cov: torch.Tensor, step_size) -> torch.Tensor:
    """The stationary covariance of unadjusted Langevin dynamics on N(m, C) at a fixed step size delta.

    The chain is x - m <- A (x - m) + sqrt(delta) z with A = I - delta/2 C^{-1}; its stationary covariance
    S solves S = A S A + delta I, i.e. S = C (I - delta C^{-1} / 4)^{-1}: each eigenvalue lambda of C
    becomes lambda / (1 - delta / (4 lambda)), wider than C by O(delta) (needs delta < 4 lambda_min)."""
    cov = torch.as_tensor(cov, dtype=torch.float64)
    step_size = _check_step_size(step_size)
    lam, U = torch.linalg.eigh(cov)
    if step_size >= 4 * float(lam.min()):
        raise ValueError(f"step_size must be below 4 * the smallest eigenvalue of cov ({4 * float(lam.min()):.3g}); "
                         "the chain diverges otherwise")
    return U @ torch.diag(lam / (1 - step_size / (4 * lam))) @ U.T


# -- the probability-flow ODE (DDIM eq. 14) ------------------------------------------------------------------
def ode_sigma(schedule: Schedule, t) -> torch.Tensor:
    """DDIM's ODE variable sigma_t = sqrt((1 - bar-alpha_t) / bar-alpha_t) (eq. 14), float64; sigma_0 = 0."""
    schedule = as_schedule(schedule)
    ab = schedule.alpha_bars[as_time(t, schedule.T, "t", low=0)]
    return ((1 - ab) / ab).sqrt()


def euler_step(x_t: torch.Tensor, eps: torch.Tensor, t, t_prev, schedule: Schedule) -> torch.Tensor:
    """One Euler step of the probability-flow ODE (DDIM eq. 14) from t to t_prev < t (DDIM eq. 13):

        x_prev / sqrt(bar-alpha_prev) = x_t / sqrt(bar-alpha_t) + (sigma_prev - sigma_t) eps.

    This is algebraically DDIM's eta = 0 step (eq. 12), which the samplers use; the tests check the two
    agree to 1e-12 in float64 (DDIM sec. 4.3)."""
    schedule = as_schedule(schedule)
    check_tensor(x_t, "x_t")
    check_tensor(eps, "eps")
    check_same_shape(eps, x_t, "eps", "x_t")
    ab, ab_prev = _alpha_bar_pair(schedule, t, t_prev, x_t)
    sigma, sigma_prev = ((1 - ab) / ab).sqrt(), ((1 - ab_prev) / ab_prev).sqrt()
    return (x_t / ab.sqrt() + (sigma_prev - sigma) * eps) * ab_prev.sqrt()


def pf_euler_step(x_t: torch.Tensor, eps: torch.Tensor, t, t_prev, schedule: Schedule) -> torch.Tensor:
    """One Euler step "for the probability flow ODE" of the variance-exploding SDE, in its time rather than in
    sigma: DDIM eq. 15, from t to t_prev < t,

        x_prev / sqrt(bar-alpha_prev) = x_t / sqrt(bar-alpha_t)
                                        + 1/2 (sigma_prev^2 - sigma_t^2) / sigma_t * eps,

    with DDIM's sigma = sqrt((1 - bar-alpha) / bar-alpha). This is the probability-flow ODE
    d x-bar = -1/2 d(sigma^2)/dt grad log p_t(x-bar) dt (DDIM eq. 47 in its proof of Proposition 1) with the score
    -eps / sigma_t (eq. 49), stepped as Song et al. (2021, app. D.3, eq. 43) step it: the slope is taken at t and
    g(t)^2 dt over the step is the increment of sigma^2 between the two times, the schedule's own finite difference.
    So no continuous sigma(t) is needed, and the step is exact in t for any clock in which sigma^2 grows linearly
    over the step: it is Euler's method in the variable sigma^2, where :func:`euler_step` (DDIM eq. 13) is Euler's
    method in sigma. The two differ by (sigma_t - sigma_prev)^2 / (2 sigma_t) * eps in x-bar, second order in the
    step ("equivalent to ours if alpha_t and alpha_{t - Delta t} are close enough", DDIM sec. 4.3); to t_prev = 0
    this step covers half of DDIM's."""
    schedule = as_schedule(schedule)
    check_tensor(x_t, "x_t")
    check_tensor(eps, "eps")
    check_same_shape(eps, x_t, "eps", "x_t")
    ab, ab_prev = _alpha_bar_pair(schedule, t, t_prev, x_t)
    var, var_prev = (1 - ab) / ab, (1 - ab_prev) / ab_prev
    return (x_t / ab.sqrt() + 0.5 * (var_prev - var) / var.sqrt() * eps) * ab_prev.sqrt()


def pf_ode_solve(model, x: torch.Tensor, sigma, sigma_end, schedule: Schedule, *, rtol: float = 1e-10,
                 atol: float = 1e-12) -> torch.Tensor:
    """The reference solution of the probability-flow ODE (DDIM eq. 14) from noise level ``sigma`` down
    (or up) to ``sigma_end``, with scipy's ``solve_ivp`` (DOP853, 8th order) at tight tolerances.

    ``x`` is in DDPM's variables at the noise level sigma (bar-alpha = 1 / (1 + sigma^2)); the result is
    in DDPM's variables at sigma_end. The ODE is integrated in x-bar = x / sqrt(bar-alpha) against sigma
    itself, and the model is evaluated at the continuous noise level bar-alpha(sigma) = 1 / (1 + sigma^2),
    the exact inverse of sigma(bar-alpha): no interpolation of the schedule between its integer times is
    involved, and the schedule only bounds the range [0, sigma_T]. That needs a model defined at every
    noise level, ``model.eps_at(x, alpha_bar)`` (the exact models of :mod:`minddim.analytic`); a
    trained network knows only the integer times 1..T, so for it use DDIM (Euler) or :func:`minddim.heun`."""
    from scipy.integrate import solve_ivp

    schedule = as_schedule(schedule)
    eps_at = getattr(model, "eps_at", None)
    if not callable(eps_at):
        raise TypeError("model must provide eps_at(x_t, alpha_bar), E[eps | x_t] at any noise level (the exact "
                        "models of minddim.analytic do); a network trained on integer times cannot be "
                        "evaluated between them: sample it with ddim or heun instead")
    check_tensor(x, "x")
    sigma_max = float(ode_sigma(schedule, schedule.T))
    s0, s1 = (_check_sigma(v, name, sigma_max) for v, name in ((sigma, "sigma"), (sigma_end, "sigma_end")))
    if s0 == s1:
        return x.clone()
    shape, dtype = x.shape, x.dtype
    xbar0 = (x.to(torch.float64) * math.sqrt(1 + s0**2)).reshape(-1).numpy()

    def drift(s, xbar):
        xb = torch.from_numpy(xbar).reshape(shape)
        eps = eps_at(xb / math.sqrt(1 + s**2), 1 / (1 + s**2))
        return eps.to(torch.float64).reshape(-1).numpy()

    sol = solve_ivp(drift, (s0, s1), xbar0, method="DOP853", rtol=rtol, atol=atol)
    if not sol.success:
        raise RuntimeError(f"solve_ivp failed: {sol.message}")
    return (torch.from_numpy(sol.y[:, -1]).reshape(shape) / math.sqrt(1 + s1**2)).to(dtype)


def gaussian_flow_map(x: torch.Tensor, sigma, sigma_end, mean, cov) -> torch.Tensor:
    """The probability-flow ODE's exact solution map for Gaussian data x_0 ~ N(m, C).

    In DDIM's variables x-bar ~ N(m, C + sigma^2 I) and d x-bar / d sigma = sigma (C + sigma^2 I)^{-1}
    (x-bar - m), so along each eigenvector of C (eigenvalue lambda) the offset from m scales by
    sqrt((lambda + sigma_end^2) / (lambda + sigma^2)). ``x`` and the result are in DDPM's variables."""
    check_tensor(x, "x")
    m = torch.as_tensor(mean, dtype=torch.float64)
    lam, U = torch.linalg.eigh(torch.as_tensor(cov, dtype=torch.float64))
    s0, s1 = float(sigma), float(sigma_end)
    xbar = x.to(torch.float64) * math.sqrt(1 + s0**2)
    scale = ((lam + s1**2) / (lam + s0**2)).sqrt()
    xbar_end = m + ((xbar - m) @ U) * scale @ U.T
    return (xbar_end / math.sqrt(1 + s1**2)).to(x.dtype)


# -- helpers ---------------------------------------------------------------------------------------------------
def _check_step_size(v, name: str = "step_size") -> float:
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise TypeError(f"{name} must be a positive number, got {v!r}")
    v = float(v)
    if not (v > 0 and math.isfinite(v)):
        raise ValueError(f"{name} must be a positive, finite number, got {v}")
    return v


def _check_sigma(v, name: str, sigma_max: float) -> float:
    if isinstance(v, torch.Tensor) and v.numel() == 1:
        v = float(v)
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise TypeError(f"{name} must be a number, got {type(v).__name__}")
    v = float(v)
    if not (0 <= v <= sigma_max * (1 + 1e-12)):
        raise ValueError(f"{name} must lie in the schedule's range [0, sigma_T] = [0, {sigma_max:.4g}], got {v}")
    return v


def _called(fn, x: torch.Tensor, level, name: str) -> torch.Tensor:
    """fn(x) or fn(x, level), checked to return a tensor shaped like x."""
    out = fn(x) if level is None else fn(x, level)
    if not isinstance(out, torch.Tensor) or out.shape != x.shape:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"{name} must return a tensor shaped like x {tuple(x.shape)}, got {got}")
    return out
