"""The answer key of the graded exercises: for every question, the inputs it is checked on (random and edge
cases), the package's reference, and the mistakes learners really make, each with its hint.  One section per
exercise notebook in ``solutions/``; :mod:`minddim.checks` runs them.
"""

from __future__ import annotations

import math

import torch

from . import bound, diffusion, sampling
from .analytic import GaussianDenoiser, GaussianMixtureDenoiser
from .checks import Case, _register
from .data import toy_mixture
from .losses import epsilon_loss
from .schedules import Schedule
from .score import euler_step, langevin_step, score_from_eps


# -- inputs ----------------------------------------------------------------------------------------
LONG = Schedule.linear()
SHORT = Schedule.linear(10, 1e-3, 0.3)


def _time_cases(make, low: int = 1):
    """Cases over time: random t (batch 5, float32), t = low and t = T (batch 3), batch 1, float64,
    image-shaped x, and the short schedule's last step."""
    g = torch.Generator().manual_seed(2024)
    specs = [
        ("random t, batch 5", LONG, torch.randint(max(low, 1), LONG.T + 1, (5,), generator=g), (5, 2), torch.float32),
        (f"t = {low}", LONG, torch.full((3,), low), (3, 2), torch.float32),
        ("t = T", LONG, torch.full((3,), LONG.T), (3, 2), torch.float32),
        ("batch size 1", LONG, torch.tensor([500]), (1, 2), torch.float32),
        ("float64", LONG, torch.randint(max(low, 1), LONG.T + 1, (4,), generator=g), (4, 3), torch.float64),
        ("image-shaped x (batch 2, 1x4x4)", LONG, torch.tensor([3, 700]), (2, 1, 4, 4), torch.float32),
        ("a short schedule (T = 10), t = T", SHORT, torch.full((2,), SHORT.T), (2, 2), torch.float32),
    ]
    return [Case(label, make(s, t, shape, dtype, g)) for label, s, t, shape, dtype in specs]


def _randn(shape, dtype, g):
    return torch.randn(shape, generator=g, dtype=torch.float64).to(dtype)


def _per(values, t, x):
    return values[t].to(x.dtype).reshape(-1, *([1] * (x.dim() - 1)))


# -- 01 forward process ---------------------------------------------------------------------------------
def _betas_cases():
    return [Case("the DDPM linear schedule (T = 1000)", {"betas": LONG.betas.clone()}),
            Case("a short schedule (T = 10)", {"betas": SHORT.betas.clone()}),
            Case("T = 3, float64", {"betas": torch.tensor([0.0, 0.1, 0.2, 0.3], dtype=torch.float64)})]


_register(
    "alpha_bars",
    hints=("alpha-bar_t is how much of x_0's signal (squared) survives after t steps of noise: the product of what each step keeps",
           "notebook 01, section 2 (Jumping to any t); DDPM's definition above eq. 4"),
    cases=_betas_cases,
    reference=lambda betas: torch.cumprod(1 - betas, 0),
    mistakes={
        "you took the product of the betas; alpha-bar_t is the product of alpha_s = 1 - beta_s":
            lambda betas: torch.cumprod(betas, 0),
        "that is alpha_t = 1 - beta_t; alpha-bar_t is the cumulative product of the alphas":
            lambda betas: 1 - betas,
        "index 0 must hold alpha-bar_0 = 1 (1-based time): keep betas[0] = 0 in the product rather than dropping it":
            lambda betas: torch.cumprod(1 - betas[1:], 0),
    })


def _q_sample_inputs(s, t, shape, dtype, g):
    return {"x0": _randn(shape, dtype, g), "t": t, "schedule": s, "noise": _randn(shape, dtype, g)}


def _q_sample_with(values_fn, signal_sqrt=True, noise_sqrt=True):
    def f(x0, t, schedule, noise):
        v = _per(values_fn(schedule), t, x0)
        return (v.sqrt() if signal_sqrt else v) * x0 + ((1 - v).sqrt() if noise_sqrt else 1 - v) * noise
    return f


_register(
    "q_sample",
    hints=('x_t drawn from q(x_t | x_0) in one go: x_0 shrunk by the surviving signal, plus Gaussian noise of the remaining variance',
           'notebook 01, section 2; DDPM eq. 4 (the reparameterized draw)'),
    cases=lambda: _time_cases(_q_sample_inputs),
    reference=lambda x0, t, schedule, noise: diffusion.q_sample(x0, t, schedule, noise),
    mistakes={
        "you used alpha_t where alpha-bar_t belongs: q(x_t | x_0) needs the cumulative product (schedule.alpha_bars)":
            _q_sample_with(lambda s: s.alphas),
        "the noise is scaled by the variance 1 - alpha-bar_t; it needs the standard deviation sqrt(1 - alpha-bar_t)":
            _q_sample_with(lambda s: s.alpha_bars, noise_sqrt=False),
        "missing square root: x_0 is scaled by sqrt(alpha-bar_t), not alpha-bar_t":
            _q_sample_with(lambda s: s.alpha_bars, signal_sqrt=False),
        "off by one: alpha_bars[t] is alpha-bar_t in this course's 1-based time (0-based code would use t - 1)":
            _q_sample_with(lambda s: torch.cat([s.alpha_bars[:1], s.alpha_bars[:-1]])),
    })


def _q_step_with(values_fn, sqrt=True):
    def f(x_prev, t, schedule, noise):
        b = _per(values_fn(schedule), t, x_prev)
        return ((1 - b).sqrt() if sqrt else 1 - b) * x_prev + (b.sqrt() if sqrt else b) * noise
    return f


_register(
    "q_step",
    hints=('one step of the forward chain: shrink x_{t-1} a little and add a little noise, keeping the total variance at 1',
           'notebook 01, section 1 (One step of noise); DDPM eq. 2'),
    cases=lambda: _time_cases(lambda s, t, shape, dtype, g: {"x_prev": _randn(shape, dtype, g), "t": t, "schedule": s,
                                                             "noise": _randn(shape, dtype, g)}),
    reference=lambda x_prev, t, schedule, noise: diffusion.q_step(x_prev, t, schedule, noise),
    mistakes={
        "you used 1 - alpha-bar_t where beta_t belongs: one step adds noise of variance beta_t (schedule.betas)":
            _q_step_with(lambda s: 1 - s.alpha_bars),
        "missing square roots: the step is sqrt(1 - beta_t) x_{t-1} + sqrt(beta_t) noise (variances add, not stds)":
            _q_step_with(lambda s: s.betas, sqrt=False),
        "off by one: betas[t] is beta_t in this course's 1-based time":
            _q_step_with(lambda s: torch.cat([s.betas[:1], s.betas[:-1]])),
    })


# -- 02 posterior and bound -----------------------------------------------------------------------------
def _posterior_inputs(s, t, shape, dtype, g):
    return {"x0": _randn(shape, dtype, g), "x_t": _randn(shape, dtype, g), "t": t, "schedule": s}


def _posterior_with(ab_prev_shift=1, alpha_bar_in_xt=False, std=False):
    def f(x0, x_t, t, schedule):
        ab = _per(schedule.alpha_bars, t, x_t)
        ab_prev = _per(schedule.alpha_bars, t - ab_prev_shift, x_t) if ab_prev_shift else ab
        beta = _per(schedule.betas, t, x_t)
        a = ab if alpha_bar_in_xt else 1 - beta
        mean = ab_prev.sqrt() * beta / (1 - ab) * x0 + a.sqrt() * (1 - ab_prev) / (1 - ab) * x_t
        var = (1 - ab_prev) / (1 - ab) * beta
        return mean, var.sqrt() if std else var
    return f


_register(
    "q_posterior",
    hints=('the Gaussian over x_{t-1} once both x_t and x_0 are known: the target every reverse step is trained toward',
           'notebook 02, section 2 (The posterior); DDPM eqs. 6-7'),
    cases=lambda: _time_cases(_posterior_inputs, low=2),
    reference=lambda x0, x_t, t, schedule: diffusion.q_posterior(x0, x_t, t, schedule),
    mistakes={
        "the x_t coefficient needs sqrt(alpha_t) (one step), not sqrt(alpha-bar_t)":
            _posterior_with(alpha_bar_in_xt=True),
        "off by one: the posterior uses alpha-bar_{t-1} (alpha_bars[t - 1]) next to alpha-bar_t":
            _posterior_with(ab_prev_shift=0),
        "you returned the standard deviation; return the variance tilde-beta_t":
            _posterior_with(std=True),
    },
    # float32 coefficients at t = 2 lose ~1e-4 to cancellation in 1 - alpha-bar_2 (the package computes them
    # in float64): a rounding difference, not a mistake; every listed mistake is off by far more
    rtol=2e-3, atol=1e-5)


def _kl_cases():
    g = torch.Generator().manual_seed(7)
    out = []
    for label, dtype in (("random Gaussians", torch.float32), ("float64", torch.float64)):
        m1, m2 = _randn((6,), dtype, g), _randn((6,), dtype, g)
        v1, v2 = torch.rand(6, generator=g).to(dtype) + 0.1, torch.rand(6, generator=g).to(dtype) + 0.1
        out.append(Case(label, {"mean1": m1, "var1": v1, "mean2": m2, "var2": v2}))
    out.append(Case("equal Gaussians (KL = 0)", {"mean1": torch.ones(3), "var1": torch.full((3,), 0.5),
                                                 "mean2": torch.ones(3), "var2": torch.full((3,), 0.5)}))
    return out


def _kl_with(swap=False, half=True, std=False):
    def f(mean1, var1, mean2, var2):
        if swap:
            mean1, var1, mean2, var2 = mean2, var2, mean1, var1
        if std:
            var1, var2 = var1**2, var2**2
        kl = torch.log(var2 / var1) + (var1 + (mean1 - mean2) ** 2) / var2 - 1
        return 0.5 * kl if half else kl
    return f


_register(
    "normal_kl",
    hints=('how many nats a code built for the second Gaussian wastes on samples of the first, per element',
           'notebook 02, section 3 (The bound term by term); the Gaussian KL under DDPM eq. 5'),
    cases=_kl_cases,
    reference=lambda mean1, var1, mean2, var2: bound.normal_kl(mean1, var1, mean2, var2),
    mistakes={
        "the arguments are swapped: KL(p || q) puts p = N(mean1, var1) first (KL is not symmetric)": _kl_with(swap=True),
        "missing factor 1/2 in front of the bracket": _kl_with(half=False),
        "var1 and var2 are variances already; you squared them as if they were standard deviations": _kl_with(std=True),
    })


def _prior_cases():
    g = torch.Generator().manual_seed(3)
    return [Case("batch 4 of 2-D points", {"x0": _randn((4, 2), torch.float64, g), "schedule": LONG}),
            Case("images (batch 2, 1x4x4)", {"x0": _randn((2, 1, 4, 4), torch.float64, g), "schedule": LONG}),
            Case("a short schedule (T = 10)", {"x0": _randn((3, 2), torch.float64, g), "schedule": SHORT})]


def _prior_with(values_fn, reduce="sum"):
    def f(x0, schedule):
        ab = values_fn(schedule)[-1].to(x0.dtype)
        kl = 0.5 * (-torch.log(1 - ab) + (1 - ab) + ab * x0**2 - 1)
        kl = kl.reshape(x0.shape[0], -1)
        return kl.sum(1) if reduce == "sum" else kl.mean(1)
    return f


_register(
    "prior_term",
    hints=('L_T: how far q(x_T | x_0) still is from the N(0, I) that sampling starts from, one number per sample',
           'notebook 02, sections 1 and 3; DDPM eq. 5, the first term'),
    cases=_prior_cases,
    reference=lambda x0, schedule: bound.prior_term(x0, schedule),
    mistakes={
        "average over dimensions instead of summing: L_T is a KL between D-dimensional Gaussians, the sum of D terms":
            _prior_with(lambda s: s.alpha_bars, reduce="mean"),
        "you used alpha_T where alpha-bar_T belongs: q(x_T | x_0) has mean sqrt(alpha-bar_T) x_0":
            _prior_with(lambda s: s.alphas),
    })


# -- 03 epsilon loss ------------------------------------------------------------------------------------
def _linear_model(x, t):
    return 0.3 * x + 0.001 * t.to(x.dtype).reshape(-1, *([1] * (x.dim() - 1)))


def _eps_loss_inputs(s, t, shape, dtype, g):
    return {"model": _linear_model, "x0": _randn(shape, dtype, g), "t": t, "noise": _randn(shape, dtype, g), "schedule": s}


def _eps_loss_with(values_fn, reduce="mean", target="noise"):
    def f(model, x0, t, noise, schedule):
        v = _per(values_fn(schedule), t, x0)
        x_t = v.sqrt() * x0 + (1 - v).sqrt() * noise
        err = (model(x_t, t) - (noise if target == "noise" else x0)) ** 2
        return err.mean() if reduce == "mean" else err.sum()
    return f


_register(
    "epsilon_loss",
    hints=('L_simple: how well the model recovers the noise that made x_t, averaged over everything',
           'notebook 03, section 1 (From the posterior mean to predicting eps); DDPM eq. 14'),
    cases=lambda: _time_cases(_eps_loss_inputs),
    reference=lambda model, x0, t, noise, schedule: epsilon_loss(model, x0, schedule, t=t, noise=noise),
    mistakes={
        "x_t must be built with alpha-bar_t (q_sample), not alpha_t": _eps_loss_with(lambda s: s.alphas),
        "L_simple here is the mean over all elements, not the sum": _eps_loss_with(lambda s: s.alpha_bars, reduce="sum"),
        "the target is the noise eps that made x_t, not x_0": _eps_loss_with(lambda s: s.alpha_bars, target="x0"),
    })


def _mean_inputs(s, t, shape, dtype, g):
    return {"x_t": _randn(shape, dtype, g), "eps": _randn(shape, dtype, g), "t": t, "schedule": s}


def _p_mean_with(alpha_fn=lambda s: s.alphas, sqrt_in_denominator=True):
    def f(x_t, eps, t, schedule):
        a, ab, beta = (_per(alpha_fn(schedule), t, x_t), _per(schedule.alpha_bars, t, x_t), _per(schedule.betas, t, x_t))
        denom = (1 - ab).sqrt() if sqrt_in_denominator else 1 - ab
        return (x_t - beta / denom * eps) / a.sqrt()
    return f


_register(
    "p_mean",
    hints=('the mean of p_theta(x_{t-1} | x_t) when the model predicts the noise: the posterior mean with x_0 replaced by its estimate',
           'notebook 03, section 1; DDPM eq. 11'),
    cases=lambda: _time_cases(_mean_inputs),
    reference=lambda x_t, eps, t, schedule: diffusion.p_mean(x_t, eps, t, schedule),
    mistakes={
        "the outer factor is 1 / sqrt(alpha_t) (one step), not 1 / sqrt(alpha-bar_t)": _p_mean_with(lambda s: s.alpha_bars),
        "missing square root: eps is scaled by beta_t / sqrt(1 - alpha-bar_t)": _p_mean_with(sqrt_in_denominator=False),
    })


def _step_inputs(s, t, shape, dtype, g):
    return {"x_t": _randn(shape, dtype, g), "eps": _randn(shape, dtype, g), "t": t, "schedule": s,
            "z": _randn(shape, dtype, g)}


def _ancestral_with(std=True, alpha_fn=lambda s: s.alphas):
    def f(x_t, eps, t, schedule, z):
        mean = _p_mean_with(alpha_fn)(x_t, eps, t, schedule)
        var = _per(schedule.beta_tildes, t, x_t)
        return mean + (var.sqrt() if std else var) * z
    return f


_register(
    "ancestral_step",
    hints=("one reverse step of DDPM: the model's mean plus fresh noise of the posterior's spread",
           'notebook 03, section 3 (Ancestral sampling); DDPM Algorithm 2, line 4'),
    cases=lambda: _time_cases(_step_inputs),
    reference=lambda x_t, eps, t, schedule, z: sampling.ddim_step(x_t, eps, t, t - 1, schedule, 1.0, z)[0],
    mistakes={
        "the noise is scaled by the variance tilde-beta_t; it needs the standard deviation sqrt(tilde-beta_t)":
            _ancestral_with(std=False),
        "the outer factor of the mean is 1 / sqrt(alpha_t), not 1 / sqrt(alpha-bar_t)":
            _ancestral_with(alpha_fn=lambda s: s.alpha_bars),
    })


# -- 04 DDIM ---------------------------------------------------------------------------------------------
def _sigma_cases():
    g = torch.Generator().manual_seed(5)
    t = torch.randint(2, 1001, (6,), generator=g)
    tp = (t * torch.rand(6, generator=g)).long()
    return [Case("random t > t_prev, eta = 0.5", {"schedule": LONG, "t": t, "t_prev": tp, "eta": 0.5}),
            Case("t_prev = t - 1, eta = 1 (DDPM)", {"schedule": LONG, "t": t, "t_prev": t - 1, "eta": 1.0}),
            Case("eta = 0", {"schedule": LONG, "t": t, "t_prev": tp, "eta": 0.0}),
            Case("last step (t_prev = 0), eta = 1", {"schedule": LONG, "t": torch.tensor([1, 20]), "t_prev": torch.tensor([0, 0]), "eta": 1.0}),
            Case("a short schedule (T = 10), eta = 0.3", {"schedule": SHORT, "t": torch.tensor([10, 7]), "t_prev": torch.tensor([5, 6]), "eta": 0.3})]


def _sigma_with(values_fn=lambda s: s.alpha_bars, eta_used=True, sqrt=True):
    def f(schedule, t, t_prev, eta):
        ab, abp = values_fn(schedule)[t], values_fn(schedule)[t_prev]
        s2 = (1 - abp) / (1 - ab) * (1 - ab / abp)
        return (eta if eta_used else 1.0) * (s2.sqrt() if sqrt else s2)
    return f


_register(
    "ddim_sigma",
    hints=("sigma_t: the standard deviation of the fresh noise in DDIM's step; eta scales it from 0 (deterministic) to DDPM's",
           "notebook 04, section 3 (The generative process, and eta); DDIM eq. 16, from q_sigma's variance in eq. 7"),
    cases=_sigma_cases,
    reference=lambda schedule, t, t_prev, eta: sampling.ddim_sigma(schedule, t, t_prev, eta),
    mistakes={
        "you ignored eta: sigma is eta times the DDPM-like value (eta = 0 must give 0)": _sigma_with(eta_used=False),
        "missing square roots: eq. 16 is eta * sqrt(...) * sqrt(...), a standard deviation": _sigma_with(sqrt=False),
        "DDIM's alpha_t is DDPM's alpha-bar_t: use schedule.alpha_bars, not schedule.alphas":
            _sigma_with(values_fn=lambda s: s.alphas),
    }, rtol=1e-6, atol=1e-9)


def _ddim_step_inputs(s, t, shape, dtype, g):
    tp = (t * 0.6).long()
    return {"x_t": _randn(shape, dtype, g), "eps": _randn(shape, dtype, g), "t": t, "t_prev": tp, "schedule": s,
            "eta": 0.5, "noise": _randn(shape, dtype, g)}


def _ddim_step_with(eta_used=True, sigma_in_direction=True, std=True):
    def f(x_t, eps, t, t_prev, schedule, eta, noise):
        ab, abp = _per(schedule.alpha_bars, t, x_t), _per(schedule.alpha_bars, t_prev, x_t)
        sigma = _per(sampling.ddim_sigma(schedule, t, t_prev, eta if eta_used else 0.0), torch.arange(len(t)), x_t)
        x0 = (x_t - (1 - ab).sqrt() * eps) / ab.sqrt()
        direction = (1 - abp - (sigma**2 if sigma_in_direction else 0)).sqrt() * eps
        return abp.sqrt() * x0 + direction + (sigma if std else sigma**2) * noise
    return f


_register(
    "ddim_step",
    hints=("DDIM's reverse step: predict x_0, point back toward x_t with the rest of the noise budget, add sigma-scaled noise",
           'notebook 04, section 3; DDIM eq. 12'),
    cases=lambda: _time_cases(_ddim_step_inputs),
    reference=lambda x_t, eps, t, t_prev, schedule, eta, noise: sampling.ddim_step(x_t, eps, t, t_prev, schedule, eta, noise)[0],
    mistakes={
        "you ignored eta: with eta > 0 the step adds sigma * noise (and shrinks the direction term)":
            _ddim_step_with(eta_used=False),
        "the direction term is sqrt(1 - alpha-bar_prev - sigma^2) * eps: you left out sigma^2":
            _ddim_step_with(sigma_in_direction=False),
        "the noise is scaled by sigma^2; it needs the standard deviation sigma": _ddim_step_with(std=False),
    })


def _gaussian_model(schedule):
    return GaussianDenoiser(torch.tensor([0.5, -0.5]), torch.tensor([[1.0, 0.6], [0.6, 0.8]]), schedule)


def _sampler_cases():
    g = torch.Generator().manual_seed(11)
    return [Case("eta = 0, S = 10 (exact Gaussian model)",
                 {"model": _gaussian_model(LONG), "x_T": _randn((6, 2), torch.float64, g), "schedule": LONG,
                  "timesteps": sampling.timesteps(1000, 10), "eta": 0.0, "generator": None}),
            Case("eta = 0, quadratic S = 7, batch 1",
                 {"model": _gaussian_model(LONG), "x_T": _randn((1, 2), torch.float64, g), "schedule": LONG,
                  "timesteps": sampling.timesteps(1000, 7, "quadratic"), "eta": 0.0, "generator": None}),
            Case("eta = 1 with a seeded generator",
                 {"model": _gaussian_model(SHORT), "x_T": _randn((4, 2), torch.float64, g), "schedule": SHORT,
                  "timesteps": torch.tensor([2, 5, 10]), "eta": 1.0, "generator": "seed:3"})]


def _sample_with(last_step=True, eta_used=True):
    def f(model, x_T, schedule, timesteps, eta, generator):
        walk = timesteps.tolist()[::-1] + ([0] if last_step else [])
        x = x_T
        for t, tp in zip(walk[:-1], walk[1:]):
            x, _ = sampling.ddim_step(x, model(x, torch.full((x.shape[0],), t)), t, tp, schedule,
                                      eta if eta_used else 0.0, generator=generator)
        return x
    return f


_register(
    "ddim_sample",
    hints=('the whole sampler: walk the subsequence tau from its end down to x_0, one DDIM step at a time',
           'notebook 04, section 3 and notebook 05, section 1; DDIM eq. 12 over tau (sec. 4.2)'),
    cases=_sampler_cases,
    reference=lambda model, x_T, schedule, timesteps, eta, generator: sampling.sample(
        model, x_T, schedule, timesteps, eta, generator=generator),
    mistakes={
        "the last step must go from tau_1 to 0 (x_0); your loop stops at x_{tau_1}": _sample_with(last_step=False),
        "you ignored eta: pass it to every step": _sample_with(eta_used=False),
    }, rtol=1e-6, atol=1e-8)


# -- 05 subsequences and encoding ---------------------------------------------------------------------------
_register(
    "uniform_timesteps",
    hints=('tau: S evenly spread times in 1..T at which the fast sampler evaluates the model',
           'notebook 05, section 1 (Subsequences tau); DDIM sec. 4.2 and app. D.2'),
    cases=lambda: [Case(f"T = {T}, S = {S}", {"T": T, "S": S}) for T, S in ((1000, 10), (1000, 50), (1000, 30), (10, 10), (7, 1))],
    reference=lambda T, S: sampling.timesteps(T, S, "uniform").tolist(),
    mistakes={
        "0-based: this course's time runs 1..T, so shift the official code's range(0, T, T // S) by one":
            lambda T, S: [(i * T) // S for i in range(S)],
        "return tau in increasing order (tau_1 < ... < tau_S); the sampler walks it backwards":
            lambda T, S: [(i * T) // S + 1 for i in range(S)][::-1],
        "range(1, T + 1, T // S) has more than S entries when S does not divide T: use floor((i - 1) T / S) + 1":
            lambda T, S: list(range(1, T + 1, T // S)),
    })


def _slerp_cases():
    g = torch.Generator().manual_seed(9)
    return [Case("w = 0.3, batch 3 of 16-dim latents", {"z0": _randn((3, 16), torch.float32, g), "z1": _randn((3, 16), torch.float32, g), "w": 0.3}),
            Case("w = 0", {"z0": _randn((2, 4), torch.float64, g), "z1": _randn((2, 4), torch.float64, g), "w": 0.0}),
            Case("w = 1, images (batch 2, 1x4x4)", {"z0": _randn((2, 1, 4, 4), torch.float32, g), "z1": _randn((2, 1, 4, 4), torch.float32, g), "w": 1.0}),
            Case("orthogonal unit vectors, w = 0.5", {"z0": torch.tensor([[1.0, 0.0]]), "z1": torch.tensor([[0.0, 1.0]]), "w": 0.5})]


_register(
    "slerp",
    hints=('interpolation between two Gaussian latents that keeps their norm: along the great circle, not the chord',
           'notebook 05, section 4 (Interpolation); DDIM sec. 5.4'),
    cases=_slerp_cases,
    reference=lambda z0, z1, w: sampling.slerp(z0, z1, w),
    mistakes={
        "that is linear interpolation (1 - w) z0 + w z1; slerp follows the great circle, weights sin((1 - w) theta) / sin(theta)":
            lambda z0, z1, w: (1 - w) * z0 + w * z1,
    })


def _encode_cases():
    g = torch.Generator().manual_seed(13)
    return [Case(f"S = {S} (exact Gaussian model)", {"model": _gaussian_model(LONG), "x0": _randn((5, 2), torch.float64, g),
                                                      "schedule": LONG, "timesteps": sampling.timesteps(1000, S)})
            for S in (5, 20)]


def _encode_with(eval_at="prev"):
    def f(model, x0, schedule, timesteps):
        tau = timesteps.tolist()
        walk = [0] + tau
        x, ab = x0, schedule.alpha_bars
        for tp, t in zip(walk[:-1], walk[1:]):
            te = t if eval_at == "next" else (tp if tp > 0 else tau[0])
            eps = model(x, torch.full((x.shape[0],), te))
            x0_hat = (x - (1 - ab[tp]).sqrt() * eps) / ab[tp].sqrt()
            x = ab[t].sqrt() * x0_hat + (1 - ab[t]).sqrt() * eps
        return x
    return f


_register(
    "encode",
    hints=("DDIM's deterministic sampler run backwards: x_0 to the x_T that decodes to it",
           'notebook 05, section 4 (Encoding data into x_T and back); DDIM sec. 4.3 and eq. 13'),
    cases=_encode_cases,
    reference=lambda model, x0, schedule, timesteps: sampling.encode(model, x0, schedule, timesteps),
    mistakes={
        "evaluate the model where you are (x at t_prev, time t_prev) before stepping to t: explicit Euler; "
        "only the first step, from t = 0, uses tau_1": _encode_with("next"),
    }, rtol=1e-6, atol=1e-8)


# -- 06 scores and the probability-flow ODE -------------------------------------------------------------------
def _score_inputs(s, t, shape, dtype, g):
    return {"eps": _randn(shape, dtype, g), "t": t, "schedule": s}


def _score_with(values_fn=lambda s: s.alpha_bars, sign=-1.0, sqrt=True, divide=True):
    def f(eps, t, schedule):
        v = 1 - _per(values_fn(schedule), t, eps)
        scale = v.sqrt() if sqrt else v
        return sign * (eps / scale if divide else eps * scale)
    return f


_register(
    "score_from_eps",
    hints=('the score grad log q_t(x_t) points toward more likely x_t; the noise prediction points the other way, rescaled',
           'notebook 08, section 1 (The score of q(x_t)); DDPM sec. 3.2 / Song & Ermon'),
    cases=lambda: _time_cases(_score_inputs),
    reference=lambda eps, t, schedule: score_from_eps(eps, t, schedule),
    mistakes={
        "the sign: the score points away from the noise, grad log q_t(x_t) = -eps / sqrt(1 - alpha-bar_t)":
            _score_with(sign=1.0),
        "missing square root: divide eps by the standard deviation sqrt(1 - alpha-bar_t), not the variance "
        "1 - alpha-bar_t": _score_with(sqrt=False),
        "divide by sqrt(1 - alpha-bar_t), do not multiply: -sqrt(1 - alpha-bar_t) * score is the way back to eps":
            _score_with(divide=False),
        "you used alpha_t where alpha-bar_t belongs: x_t carries noise of variance 1 - alpha-bar_t (schedule.alpha_bars)":
            _score_with(values_fn=lambda s: s.alphas),
    },
    # at t = 1, 1 - alpha-bar_1 = beta_1 = 1e-4 loses up to ~3e-4 (relative, after the square root) when
    # alpha-bar is cast to float32 first, as the package does; computing it in float64 is just as right
    rtol=2e-3, atol=1e-5)


def _langevin_cases():
    g = torch.Generator().manual_seed(2025)

    def case(label, shape, dtype, step_size):
        return Case(label, {"x": _randn(shape, dtype, g), "score": _randn(shape, dtype, g), "step_size": step_size,
                            "noise": _randn(shape, dtype, g)})
    return [case("batch 5 of 2-D points, step size 0.1", (5, 2), torch.float32, 0.1),
            case("float64, step size 0.01", (4, 3), torch.float64, 0.01),
            case("batch size 1, step size 0.5", (1, 2), torch.float32, 0.5),
            case("image-shaped x (batch 2, 1x4x4), step size 2e-4", (2, 1, 4, 4), torch.float32, 2e-4),
            case("a large step size (3.0)", (3, 2), torch.float64, 3.0)]


def _langevin_with(drift=0.5, noise_scale=lambda d: math.sqrt(d)):
    def f(x, score, step_size, noise):
        return x + drift * step_size * score + noise_scale(step_size) * noise
    return f


_register(
    "langevin_step",
    hints=('one step of Langevin dynamics: a drift up the log-density plus noise, which samples the density in the limit',
           'notebook 08, section 4a; Song & Ermon 2019, eq. 4'),
    cases=_langevin_cases,
    reference=lambda x, score, step_size, noise: langevin_step(x, score, step_size, noise),
    mistakes={
        "missing 1/2: the drift is step_size / 2 * score (Song & Ermon eq. 4), the noise sqrt(step_size) * noise":
            _langevin_with(drift=1.0),
        "the 1/2 twice: the drift is step_size / 2 * score, not step_size / 4 * score": _langevin_with(drift=0.25),
        "the noise is scaled by step_size; it needs the standard deviation sqrt(step_size) (variance step_size)":
            _langevin_with(noise_scale=lambda d: d),
        "the 1/2 belongs to the drift only: the noise is sqrt(step_size) * noise, not sqrt(step_size / 2) * noise":
            _langevin_with(noise_scale=lambda d: math.sqrt(d / 2)),
        "the sign: Langevin dynamics climbs the log-density, x + step_size / 2 * score": _langevin_with(drift=-0.5),
    }, rtol=1e-6, atol=1e-7)


def _euler_inputs(s, t, shape, dtype, g):
    return {"x_t": _randn(shape, dtype, g), "eps": _randn(shape, dtype, g), "t": t, "t_prev": (t * 0.6).long(),
            "schedule": s}


def _euler_with(values_fn=lambda s: s.alpha_bars, sigma_fn=lambda ab: ((1 - ab) / ab).sqrt(), to_xbar=True,
                back_to_x=True, direction=1.0):
    def f(x_t, eps, t, t_prev, schedule):
        ab, abp = _per(values_fn(schedule), t, x_t), _per(values_fn(schedule), t_prev, x_t)
        xbar = x_t / ab.sqrt() if to_xbar else x_t * ab.sqrt()
        xbar_prev = xbar + direction * (sigma_fn(abp) - sigma_fn(ab)) * eps
        return xbar_prev * abp.sqrt() if back_to_x else xbar_prev
    return f


_register(
    "euler_step",
    hints=("DDIM's deterministic step seen as Euler's method on an ODE in rescaled variables x-bar and sigma",
           'notebook 08, section 5 (The probability-flow ODE); DDIM eqs. 13-14'),
    cases=lambda: _time_cases(_euler_inputs),
    reference=lambda x_t, eps, t, t_prev, schedule: euler_step(x_t, eps, t, t_prev, schedule),
    mistakes={
        "sigma^2 for sigma: DDIM's ODE variable is sigma = sqrt((1 - alpha-bar) / alpha-bar), a square root":
            _euler_with(sigma_fn=lambda ab: (1 - ab) / ab),
        "sigma in eq. 14 is sqrt((1 - alpha-bar) / alpha-bar), not DDPM's noise scale sqrt(1 - alpha-bar)":
            _euler_with(sigma_fn=lambda ab: (1 - ab).sqrt()),
        "you returned x-bar_prev: map back to x with x_prev = sqrt(alpha-bar_prev) * x-bar_prev":
            _euler_with(back_to_x=False),
        "x-bar = x / sqrt(alpha-bar): divide x_t by sqrt(alpha-bar_t), do not multiply":
            _euler_with(to_xbar=False),
        "the step goes from sigma_t down to sigma_prev: add (sigma_prev - sigma_t) * eps, with sigma_prev - sigma_t < 0":
            _euler_with(direction=-1.0),
        "DDIM's alpha is DDPM's alpha-bar: use schedule.alpha_bars, not schedule.alphas":
            _euler_with(values_fn=lambda s: s.alphas),
    },
    # the step's float32 rounding depends on the order of operations (x-bar form, DDIM's eq. 12 form, float64
    # coefficients): up to ~6e-6 relative apart; every listed mistake is off by far more
    rtol=1e-4, atol=1e-6)


def _mixture_model(schedule):
    return GaussianMixtureDenoiser(*toy_mixture("eight_gaussians"), schedule)


def _wavy_model(x, t):
    """A nonlinear stand-in for a network on images: eps depends on x and t."""
    return torch.tanh(x + 1e-3 * t.to(x.dtype).reshape(-1, *([1] * (x.dim() - 1))))


def _heun_cases():
    g = torch.Generator().manual_seed(2026)
    t = torch.randint(2, LONG.T + 1, (5,), generator=g)

    def case(label, model, schedule, t, t_prev, shape, dtype):
        return Case(label, {"model": model, "x_t": _randn(shape, dtype, g), "t": t, "t_prev": t_prev,
                            "schedule": schedule})
    return [case("random t > t_prev, batch 5 (exact eight-Gaussians model)", _mixture_model(LONG), LONG, t,
                 (t * 0.6).long().clamp(min=1), (5, 2), torch.float32),
            case("t_prev = t - 1, float64", _mixture_model(LONG), LONG, t, t - 1, (5, 2), torch.float64),
            case("t = T", _mixture_model(LONG), LONG, torch.full((3,), LONG.T), torch.full((3,), 600), (3, 2), torch.float32),
            case("t = 2, t_prev = 1", _mixture_model(LONG), LONG, torch.full((3,), 2), torch.ones(3, dtype=torch.long),
                 (3, 2), torch.float32),
            case("batch size 1", _mixture_model(LONG), LONG, torch.tensor([500]), torch.tensor([100]), (1, 2), torch.float32),
            case("image-shaped x (batch 2, 1x4x4), a nonlinear toy model", _wavy_model, LONG, torch.tensor([900, 40]),
                 torch.tensor([700, 20]), (2, 1, 4, 4), torch.float32),
            case("a short schedule (T = 10), t = T", _mixture_model(SHORT), SHORT, torch.full((2,), SHORT.T),
                 torch.full((2,), 5), (2, 2), torch.float64)]


def _heun_with(at_euler_point=True, at_t_prev=True, average=0.5, first_slope=True, restart_at_x_t=True,
               correct=True):
    def f(model, x_t, t, t_prev, schedule):
        eps = model(x_t, t)
        x_euler = euler_step(x_t, eps, t, t_prev, schedule)
        if not correct:
            return x_euler
        eps_prime = model(x_euler if at_euler_point else x_t, t_prev if at_t_prev else t)
        slope = average * ((eps if first_slope else 0 * eps) + eps_prime)
        return euler_step(x_t if restart_at_x_t else x_euler, slope, t, t_prev, schedule)
    return f


_register(
    "heun_step",
    hints=('a second-order ODE step: an Euler trial step, then the step retaken with the mean of both slopes',
           "notebook 08, section 5; DDIM eq. 14 with Heun's method"),
    cases=_heun_cases,
    reference=lambda model, x_t, t, t_prev, schedule: sampling.heun_step(model, x_t, t, t_prev, schedule)[0],
    mistakes={
        "that is the Euler (DDIM) step alone: use it as the predictor, then retake the step with the mean slope":
            _heun_with(correct=False),
        "evaluate the second slope at the point the Euler step reaches, model(x', t_prev), not at x_t":
            _heun_with(at_euler_point=False),
        "the second slope belongs to time t_prev, where the Euler step lands: model(x', t_prev), not model(x', t)":
            _heun_with(at_t_prev=False),
        "Heun's step uses the mean of both slopes, (eps_t + eps') / 2; you used eps' alone":
            _heun_with(average=1.0, first_slope=False),
        "the mean of the two slopes is (eps_t + eps') / 2; you used their sum":
            _heun_with(average=1.0),
        "retake the step from x_t (with the mean slope), not from the Euler point x'":
            _heun_with(restart_at_x_t=False),
    },
    # the exact model computes in float64 and returns float32: rounding of the step's order of operations only
    rtol=1e-4, atol=1e-6)


# -- 07 beyond sampling: inpainting and the progressive code's rate -------------------------------------------
def _replace_cases():
    g = torch.Generator().manual_seed(2027)

    def mask_of(shape, dtype=torch.bool):
        m = torch.rand(shape, generator=g) < 0.5
        m.view(-1)[:2] = torch.tensor([True, False])         # both kinds of pixel, whatever the draw
        return m if dtype == torch.bool else m.to(dtype)

    def case(label, schedule, t, t_prev, shape, dtype, mask):
        return Case(label, {"x_prev": _randn(shape, dtype, g), "x0": _randn(shape, dtype, g), "mask": mask, "t": t,
                            "t_prev": t_prev, "schedule": schedule, "noise": _randn(shape, dtype, g)})
    t = torch.randint(2, LONG.T + 1, (5,), generator=g)
    right_half = torch.zeros(1, 1, 4, 4)
    right_half[..., 2:] = 1
    return [case("random t > t_prev >= 1, batch 5, a bool mask", LONG, t, (t * 0.6).long().clamp(min=1), (5, 2),
                 torch.float32, mask_of((5, 2))),
            case("t_prev = 0 (the last step: the known pixels are x0 itself), a 0/1 float mask", LONG,
                 torch.tensor([1, 20, 300]), torch.zeros(3, dtype=torch.long), (3, 2), torch.float32,
                 mask_of((3, 2), torch.float32)),
            case("t = T", LONG, torch.full((4,), LONG.T), torch.full((4,), 900), (4, 2), torch.float32, mask_of((4, 2))),
            case("batch size 1, a 0/1 integer mask", LONG, torch.tensor([500]), torch.tensor([480]), (1, 2),
                 torch.float32, mask_of((1, 2), torch.long)),
            case("float64", LONG, torch.tensor([800, 50, 400, 2]), torch.tensor([700, 30, 100, 1]), (4, 3),
                 torch.float64, mask_of((4, 3), torch.float64)),
            case("image-shaped x (batch 2, 1x4x4), one (1, 1, 4, 4) mask for the batch (the right half known)", LONG,
                 torch.tensor([900, 40]), torch.tensor([850, 20]), (2, 1, 4, 4), torch.float32, right_half),
            case("a short schedule (T = 10), t = T, a (4, 4) bool mask against (3, 1, 4, 4)", SHORT,
                 torch.full((3,), SHORT.T), torch.full((3,), 9), (3, 1, 4, 4), torch.float32, mask_of((4, 4)))]


def _replace_with(known="draw", at="t_prev", values_fn=lambda s: s.alpha_bars, shift=0, sqrt=True, swap=False,
                  keep_all_of_x=False):
    def f(x_prev, x0, mask, t, t_prev, schedule, noise):
        m = mask.bool()
        tt = (t if at == "t" else t_prev) - shift
        ab = _per(values_fn(schedule), tt, x0)
        if known == "x0":
            draw = x0
        elif known == "mean":
            draw = ab.sqrt() * x0
        else:
            draw = (ab.sqrt() * x0 + (1 - ab).sqrt() * noise) if sqrt else ab * x0 + (1 - ab) * noise
        if keep_all_of_x:
            return m * draw + x_prev
        return torch.where(m, x_prev, draw) if swap else torch.where(m, draw, x_prev)
    return f


_register(
    "replace_known",
    hints=('the replacement step of inpainting: known pixels of x_{t_prev} are a fresh draw of q(x_{t_prev} | x_0)',
           'notebook 09, section 5 (Inpainting with an unconditional model)'),
    cases=_replace_cases,
    reference=lambda x_prev, x0, mask, t, t_prev, schedule, noise: sampling.replace_known(
        x_prev, x0, mask, t_prev, schedule, noise),
    mistakes={
        "the known pixels must carry the noise of time t_prev like the rest of x_prev: put a draw of "
        "q(x_{t_prev} | x_0) = sqrt(alpha-bar_{t_prev}) x0 + sqrt(1 - alpha-bar_{t_prev}) noise, not the clean x0":
            _replace_with(known="x0"),
        "after the step from t to t_prev, x_prev is at time t_prev: noise x0 to t_prev, not to t":
            _replace_with(at="t"),
        "known and unknown are swapped: mask = 1 marks a known pixel, which gets the draw of q(x_{t_prev} | x_0); "
        "where mask = 0 keep x_prev": _replace_with(swap=True),
        "q(x_{t_prev} | x_0) is a draw, not its mean: add sqrt(1 - alpha-bar_{t_prev}) * noise to sqrt(alpha-bar_{t_prev}) * x0":
            _replace_with(known="mean"),
        "you used alpha_t where alpha-bar_t belongs: q(x_t | x_0) has mean sqrt(alpha-bar_t) x0 (schedule.alpha_bars)":
            _replace_with(values_fn=lambda s: s.alphas),
        "missing square roots: the draw is sqrt(alpha-bar) * x0 + sqrt(1 - alpha-bar) * noise (standard deviations)":
            _replace_with(sqrt=False),
        "0-based: schedule.alpha_bars[t_prev] is alpha-bar_{t_prev} already (1-based, alpha_bars[0] = 1); do not "
        "subtract 1": _replace_with(shift=1),
        "where the mask is 1, x_prev must go: mask * draw + (1 - mask) * x_prev (or torch.where(mask.bool(), draw, "
        "x_prev)), not mask * draw + x_prev": _replace_with(keep_all_of_x=True),
    })


def _rate_cases():
    g = torch.Generator().manual_seed(2028)

    def case(label, B, T, dtype):
        # positive terms (nats or bits), L_0..L_T along the last axis
        return Case(label, {"terms": (0.1 + torch.rand(B, T + 1, generator=g, dtype=torch.float64)).to(dtype)})
    return [case("T = 10, batch 4", 4, 10, torch.float32),
            case("T = 1000 (the DDPM schedule's length), batch 3", 3, 1000, torch.float32),
            case("batch size 1, T = 10", 1, 10, torch.float32),
            case("float64, T = 1000, batch 2", 2, 1000, torch.float64),
            case("T = 1 (two terms, L_0 and L_1), batch 3", 3, 1, torch.float32)]


def _suffix_sum(x, dim=-1):
    return x.flip(dim).cumsum(dim).flip(dim)


_register(
    "progressive_rate",
    hints=("the bits the receiver holds by the time x_t is decoded in DDPM's progressive code",
           'notebook 09, section 1 (Progressive lossy compression); DDPM sec. 4.3, Algorithms 3-4'),
    cases=_rate_cases,
    reference=lambda terms: bound.progressive_rate(terms),
    mistakes={
        "you summed over the batch (axis 0): each sample has its own code, so sum along the last axis, the "
        "terms L_0..L_T": lambda terms: _suffix_sum(terms, 0),
        "you summed L_0..L_t (a forward cumulative sum from t = 0); x_T is sent first, so by time t the receiver "
        "has L_T + ... + L_t: rate[t] = sum over k >= t (flip, cumsum, flip)": lambda terms: terms.cumsum(-1),
        "off by one: L_t, the cost of sending x_t itself, is part of the rate at t: sum over k >= t, not k > t":
            lambda terms: _suffix_sum(terms) - terms,
        "index t of the result must be time t: flip the cumulative sum back (terms.flip(-1).cumsum(-1).flip(-1))":
            lambda terms: terms.flip(-1).cumsum(-1),
        "that is what is still to come after x_t (sum over k < t); the rate at t is what x_T, ..., x_t cost: "
        "sum over k >= t": lambda terms: terms.cumsum(-1) - terms,
        "that is rate[0], the whole bound, at every t: the rate at t sums only L_t, ..., L_T":
            lambda terms: terms.sum(-1, keepdim=True).expand_as(terms),
    },
    # float32 sums of 1001 terms in another order (a loop over t, total minus a prefix sum) differ by ~1e-4;
    # every term is >= 0.1, so each listed mistake is off by far more
    rtol=1e-4, atol=1e-3)


def _inpaint_step_cases():
    g = torch.Generator().manual_seed(2029)

    def case(label, model, schedule, t, t_prev, shape, dtype, mask, eta):
        return Case(label, {"model": model, "x_t": _randn(shape, dtype, g), "x0": _randn(shape, dtype, g), "mask": mask,
                            "t": t, "t_prev": t_prev, "schedule": schedule, "eta": eta,
                            "noise": _randn(shape, dtype, g), "noise_known": _randn(shape, dtype, g)})
    top = torch.zeros(1, 1, 4, 4, dtype=torch.bool)
    top[..., :2, :] = True
    return [case("random t > t_prev >= 1, eta = 1, batch 5 (exact Gaussian model)", _gaussian_model(LONG), LONG,
                 torch.tensor([900, 500, 300, 120, 40]), torch.tensor([800, 450, 250, 60, 20]), (5, 2), torch.float32,
                 torch.tensor([[True, False]] * 3 + [[False, True]] * 2), 1.0),
            case("eta = 0 (deterministic DDIM), float64", _gaussian_model(LONG), LONG, torch.full((3,), 600),
                 torch.full((3,), 400), (3, 2), torch.float64, torch.tensor([[1.0, 0.0]], dtype=torch.float64), 0.0),
            case("t_prev = 0 (the last step), batch size 1", _gaussian_model(LONG), LONG, torch.tensor([10]),
                 torch.tensor([0]), (1, 2), torch.float32, torch.tensor([[False, True]]), 0.5),
            case("image-shaped x (batch 2, 1x4x4), a (1, 1, 4, 4) mask, a nonlinear toy model", _wavy_model, LONG,
                 torch.tensor([1000, 200]), torch.tensor([950, 100]), (2, 1, 4, 4), torch.float32, top, 1.0)]


def _inpaint_step_with(replace="after", same_noise=False):
    def f(model, x_t, x0, mask, t, t_prev, schedule, eta, noise, noise_known):
        if replace == "before":
            x_t = sampling.replace_known(x_t, x0, mask, t, schedule, noise_known)
        x_prev = sampling.ddim_step(x_t, model(x_t, t), t, t_prev, schedule, eta, noise)[0]
        if replace != "after":
            return x_prev
        return sampling.replace_known(x_prev, x0, mask, t_prev, schedule, noise if same_noise else noise_known)
    return f


_register(
    "inpaint_step",
    hints=("one inpainting step: the sampler's DDIM step, then the known pixels replaced at the new time",
           'notebook 09, section 5; DDIM eq. 12 followed by the replacement step'),
    cases=_inpaint_step_cases,
    reference=lambda model, x_t, x0, mask, t, t_prev, schedule, eta, noise, noise_known: sampling.replace_known(
        sampling.ddim_step(x_t, model(x_t, t), t, t_prev, schedule, eta, noise)[0], x0, mask, t_prev, schedule,
        noise_known),
    mistakes={
        "that is the DDIM step alone: after it, replace the known pixels with a draw of q(x_{t_prev} | x_0)":
            _inpaint_step_with(replace="never"),
        "replace after the step, at t_prev (the model reads x_t as it is): replacing x_t's known pixels before the "
        "step leaves x_{t_prev}'s known pixels wherever the step moved them": _inpaint_step_with(replace="before"),
        "the draw of q(x_{t_prev} | x_0) takes its own noise, noise_known; `noise` is the DDIM step's (eq. 12)":
            _inpaint_step_with(same_noise=True),
    },
    # the exact model computes in float64 and returns float32: rounding of the step's order of operations only
    rtol=1e-4, atol=1e-6)
