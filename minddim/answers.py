"""The answer key of the graded exercises: for every question, the inputs it is checked on (random and edge
cases), the package's reference, and the mistakes learners really make, each with its hint.  One section per
exercise notebook in ``solutions/``; :mod:`minddim.checks` runs them.
"""

from __future__ import annotations

import contextlib
import io
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
    forbidden=("schedules.Schedule.from_betas",),
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
           'notebook 01, section 2; DDPM eq. 4, drawn as DDPM sec. 3.2 writes x_t: sqrt(alpha-bar_t) x_0 + sqrt(1 - alpha-bar_t) eps'),
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
    # float32 coefficients at t = 2 lose ~1e-4 to cancellation in 1 - alpha-bar_2 (float32's half-spacing near 1,
    # 3e-8, against 1 - alpha-bar_2 = 2.2e-4; the package computes them
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


def _middle_inputs(variance):
    def make(s, t, shape, dtype, g):
        """x_t drawn from q(x_t | x_0) with some noise, and a model's eps near that noise (as after training)."""
        x0, noise = _randn(shape, dtype, g), _randn(shape, dtype, g)
        return {"x0": x0, "x_t": diffusion.q_sample(x0, t, s, noise), "eps": noise + 0.3 * _randn(shape, dtype, g),
                "t": t, "schedule": s, "variance": variance}
    return make


def _middle_cases():
    """p_theta's variance tilde-beta_t (the package's default) over the usual times, and beta_t at small t, where the
    two differ most (at large t, tilde-beta_t ~ beta_t and KL(q || p) ~ KL(p || q)).  The beta_t cases at t <= 20 are
    float64, like every case of the T = 1000 schedule with t < 50: there the KL lives on a small difference of means, and a learner's float32
    coefficients (1 - alpha-bar_2 = 2.2e-4 rounded in float32) can move it by more than the check's tolerance: a
    rounding difference, not a mistake."""
    beta_tilde = _time_cases(_middle_inputs("beta_tilde"), low=2)
    g = torch.Generator().manual_seed(2031)
    make = _middle_inputs("beta")
    beta = [Case(label, make(s, torch.tensor(t), shape, dtype, g)) for label, s, t, shape, dtype in (
        ("sigma_t^2 = beta_t, t = 2, 5, 10, 20", LONG, [2, 5, 10, 20], (4, 2), torch.float64),
        ("sigma_t^2 = beta_t, a short schedule (T = 10)", SHORT, [2, 3, 10], (3, 2), torch.float64),
        ("sigma_t^2 = beta_t, image-shaped x (batch 2, 1x4x4)", LONG, [30, 500], (2, 1, 4, 4), torch.float32))]
    cases = beta_tilde[:1] + beta[:1] + beta_tilde[1:] + beta[1:]
    for c in cases:          # small t in float64 (see above)
        if c.inputs["schedule"] is LONG and int(c.inputs["t"].min()) < 50 and c.inputs["x0"].dtype == torch.float32:
            c.label += " (float64: small t)"
            c.inputs.update({k: c.inputs[k].double() for k in ("x0", "x_t", "eps")})
    return cases


def middle_term(x0, x_t, eps, t, schedule, variance="beta_tilde"):
    """The package's L_{t-1} for one x_t, as :func:`minddim.bound.vlb_terms` computes its column t - 1: the KL of
    q(x_{t-1} | x_t, x_0) against p_theta(x_{t-1} | x_t) = N(p_mean(x_t, eps), sigma_t^2), summed per sample, nats."""
    q_mean, q_var = diffusion.q_posterior(x0, x_t, t, schedule)
    mean = diffusion.p_mean(x_t, eps, t, schedule)
    var = bound.reverse_variance(schedule, t, x0, variance)
    kl = bound.normal_kl(q_mean, q_var.expand_as(q_mean), mean, var.expand_as(mean))
    return kl.reshape(x0.shape[0], -1).sum(1)


def _middle_with(swap=False, reduce="sum", bits=False, ignore_variance=False, target_eps=False):
    def f(x0, x_t, eps, t, schedule, variance="beta_tilde"):
        q_mean, q_var = diffusion.q_posterior(x0, x_t, t, schedule)
        mean = diffusion.p_mean(x_t, eps, t, schedule)
        var = bound.reverse_variance(schedule, t, x0, "beta_tilde" if ignore_variance else variance)
        q_var, var = q_var.expand_as(q_mean), var.expand_as(mean)
        kl = bound.normal_kl(mean, var, q_mean, q_var) if swap else bound.normal_kl(q_mean, q_var, mean, var)
        if bits:
            kl = kl / math.log(2)
        if reduce == "none":
            return kl
        kl = kl.reshape(x0.shape[0], -1)
        return kl.sum(1) if reduce == "sum" else kl.mean(1)
    return f


_register(
    "middle_term",
    hints=("L_{t-1}: the nats p_theta(x_{t-1} | x_t) wastes on the true reverse step q(x_{t-1} | x_t, x_0), "
           "one number per sample (a KL between D-dimensional Gaussians with diagonal covariances)",
           "notebook 02, section 3 (The bound term by term); DDPM eq. 5 (the middle sum) with eqs. 6-7 and 11"),
    cases=_middle_cases,
    reference=middle_term,
    mistakes={
        "the arguments are swapped: L_{t-1} = KL(q(x_{t-1} | x_t, x_0) || p_theta(x_{t-1} | x_t)), the posterior "
        "first (the two differ once sigma_t^2 = beta_t differs from tilde-beta_t)": _middle_with(swap=True),
        "return one number per sample: the KL of D-dimensional diagonal Gaussians is the sum of the D "
        "per-dimension KLs, shape (batch,)": _middle_with(reduce="none"),
        "average over dimensions instead of summing: the KL of D-dimensional diagonal Gaussians is the sum of "
        "the D per-dimension terms": _middle_with(reduce="mean"),
        "that is in bits: the bound's terms are in nats (natural log); bits are nats / ln 2":
            _middle_with(bits=True),
        "p_theta's variance is the one asked for: sigma_t^2 = beta_t when variance = 'beta' (DDPM sec. 3.2), "
        "tilde-beta_t when variance = 'beta_tilde'": _middle_with(ignore_variance=True),
    },
    # float32 coefficients at t = 2 lose ~1e-4 to cancellation (float32's half-spacing 3e-8 against 2.2e-4; the
    # package computes them in float64)
    rtol=2e-3, atol=1e-5)


def _decoder_cases():
    g = torch.Generator().manual_seed(2030)

    def case(label, shape, dtype, var, edge_mean=False):
        pixels = torch.randint(0, 256, shape, generator=g)
        pixels.view(-1)[:2] = torch.tensor([0, 255])            # both extremes in every case
        x0 = (pixels.to(torch.float64) / 127.5 - 1).to(dtype)
        mean = (x0.double() + 0.01 * torch.randn(shape, generator=g, dtype=torch.float64)).to(dtype)
        if edge_mean:
            mean = mean.clamp(-1, 1)
        return Case(label, {"x0": x0, "mean": mean, "var": torch.as_tensor(var, dtype=dtype)})
    return [case("batch 4 of 8-bit 2-D points (both extremes), var = 1e-4", (4, 2), torch.float32, 1e-4),
            case("images (batch 2, 1x4x4), float64, var = 4e-5", (2, 1, 4, 4), torch.float64, 4e-5),
            case("means clamped to [-1, 1], var = 1e-3", (3, 3), torch.float64, 1e-3, edge_mean=True),
            case("batch size 1, a per-sample var of shape (1, 1)", (1, 2), torch.float32, [[2e-4]])]


def decoder_nll(x0, mean, var):
    """L_0 = -log p_theta(x_0 | x_1) with DDPM's discretized decoder (eq. 13), summed per sample, in nats."""
    return -bound.discretized_gaussian_log_likelihood(x0, mean, var).reshape(x0.shape[0], -1).sum(1)


def _decoder_with(edges=True, half_width=1 / 255, reduce="sum", bits=False, sign=-1.0):
    def f(x0, mean, var):
        std = torch.as_tensor(var, dtype=x0.dtype).sqrt()
        hi, lo = (x0 - mean + half_width) / std, (x0 - mean - half_width) / std
        p = torch.special.ndtr(hi) - torch.special.ndtr(lo)
        if edges:
            p = torch.where(x0 < -0.999, torch.special.ndtr(hi), torch.where(x0 > 0.999, 1 - torch.special.ndtr(lo), p))
        ll = torch.log(p.clamp(min=1e-12))
        if bits:
            ll = ll / math.log(2)
        if reduce == "none":
            return sign * ll
        ll = ll.reshape(x0.shape[0], -1)
        return sign * (ll.sum(1) if reduce == "sum" else ll.mean(1))
    return f


_register(
    "decoder_nll",
    forbidden=("bound.discretized_gaussian_log_likelihood",),
    hints=("L_0: the nats it costs to name x_0's exact 8-bit value given x_1, the Gaussian's mass over that value's "
           "bin, one number per sample",
           "notebook 02, section 4 (The decoder for 8-bit data); DDPM eq. 13"),
    cases=_decoder_cases,
    reference=decoder_nll,
    mistakes={
        "the bins at -1 and +1 reach to infinity (eq. 13's delta_-, delta_+): at x = 1 integrate from x - 1/255 "
        "to +inf, at x = -1 from -inf to x + 1/255": _decoder_with(edges=False),
        "a pixel's bin is [x - 1/255, x + 1/255], half a grid step (2/255) on each side, not a whole step":
            _decoder_with(half_width=2 / 255),
        "return one number per sample: sum the per-pixel negative log-likelihoods, shape (batch,)":
            _decoder_with(reduce="none"),
        "average over pixels instead of summing: -log p(x_0 | x_1) of independent pixels is the sum of theirs":
            _decoder_with(reduce="mean"),
        "that is in bits: the bound's terms are in nats (natural log); bits are nats / ln 2": _decoder_with(bits=True),
        "the sign: L_0 is the negative log-likelihood, -log p(x_0 | x_1) >= 0": _decoder_with(sign=1.0),
    },
    # a direct log of the bin's mass loses precision in float32 where the package uses log_ndtr at the edges
    rtol=1e-3, atol=1e-4)


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
    forbidden=("sampling.ddim_step", "sampling.ddpm", "sampling.sample"),
    hints=("one reverse step of DDPM: the model's mean plus fresh noise of the posterior's spread",
           'notebook 03, section 4 (Ancestral sampling); DDPM Algorithm 2, line 4'),
    cases=lambda: _time_cases(_step_inputs),
    reference=lambda x_t, eps, t, schedule, z: sampling.ddim_step(x_t, eps, t, t - 1, schedule, 1.0, z)[0],
    mistakes={
        "the noise is scaled by the variance tilde-beta_t; it needs the standard deviation sqrt(tilde-beta_t)":
            _ancestral_with(std=False),
        "the outer factor of the mean is 1 / sqrt(alpha_t), not 1 / sqrt(alpha-bar_t)":
            _ancestral_with(alpha_fn=lambda s: s.alpha_bars),
    })


# Algorithm 1 end to end: the learner's training step, run by a checker (a spy first, then a seeded training run)
TRAIN_STEPS, TRAIN_BATCH, TRAIN_LR = 800, 256, 3e-3
TRAIN_WITHIN = 0.20          # the trained MLP's held-out L_simple must come within 20% of the exact floor
# the reference training_step meets it (tests/test_exercises_and_grader.py grades the solved exercise 03 full marks)


class _Spy(torch.nn.Module):
    """A model that records what the training step feeds it: eps_hat = w * x_t, one parameter w."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor(0.5))
        self.calls = []

    def forward(self, x_t, t):
        self.calls.append((x_t.detach().clone(), t.detach().clone() if isinstance(t, torch.Tensor) else t))
        return self.w * x_t


_SPY_T_HINT = ("draw t uniformly from 1..T, both ends included: this course's time is 1-based (t = 0 is the data "
               "itself, and t = T must be drawn too)")
_SPY_X_T_HINT = "form x_t with q(x_t | x_0): sqrt(alpha-bar_t) x_0 + sqrt(1 - alpha-bar_t) eps (schedule.alpha_bars)"
_SPY_NOISE_HINT = "draw fresh noise eps ~ N(0, I) at every step (from the generator): the same eps at every step trains on one noise draw"
_SPY_TARGET_HINT = "the loss compares the model's output with the noise eps that made x_t, not with x_0 (DDPM eq. 14)"
_SPY_UPDATE_HINT = ("each step needs optimizer.zero_grad(), loss.backward() and optimizer.step(), in that order; "
                    "without zero_grad the gradients of earlier steps pile up")


def _spy_case(fn, x0, schedule, seed, lr):
    """Three calls of the learner's step on a spy model with plain SGD: what t and noise it draws, what x_t it
    forms, what loss it returns and how it updates w; None or (problem, hint)."""
    spy = _Spy()
    opt = torch.optim.SGD(spy.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    T, B = schedule.T, x0.shape[0]
    noises, ts = [], []
    for call in range(3):
        w_before = spy.w.detach().clone()
        spy.calls.clear()
        loss = fn(spy, opt, x0.clone(), schedule, g)
        if len(spy.calls) != 1:
            return (f"expected one model evaluation per step, got {len(spy.calls)}",
                    "call the model once, on the batch of x_t with its t")
        x_t, t = spy.calls[0]
        if not isinstance(t, torch.Tensor) or t.dtype.is_floating_point or tuple(t.shape) != (B,):
            return (f"expected t as an integer tensor of shape ({B},), got {type(t).__name__} "
                    f"{tuple(t.shape) if isinstance(t, torch.Tensor) else ''}", "one t per sample, torch.randint(..., (batch,))")
        if tuple(x_t.shape) != tuple(x0.shape):
            return f"expected x_t of shape {tuple(x0.shape)}, got {tuple(x_t.shape)}", _SPY_X_T_HINT
        if t.min() < 1 or t.max() > T:
            return f"expected t in 1..{T}, got values from {int(t.min())} to {int(t.max())}", _SPY_T_HINT
        ab = schedule.alpha_bars[t].to(x0.dtype)[:, None]
        noise = (x_t - ab.sqrt() * x0) / (1 - ab).sqrt()
        noises.append(noise)
        ts.append(t)
        out = w_before * x_t
        expected = ((out - noise) ** 2).mean()
        if not isinstance(loss, (float, torch.Tensor)) or (isinstance(loss, torch.Tensor) and loss.numel() != 1):
            return f"expected the loss as a number, got {type(loss).__name__}", "return the loss (loss.item() or the 0-dim tensor)"
        got = float(loss)
        if not math.isclose(got, float(expected), rel_tol=1e-4, abs_tol=1e-6):
            if math.isclose(got, float(((out - x0) ** 2).mean()), rel_tol=1e-4, abs_tol=1e-6):
                return f"expected the loss {float(expected):.5g} (on eps), got {got:.5g}", _SPY_TARGET_HINT
            corr = float(torch.corrcoef(torch.stack([noise.reshape(-1), x0.reshape(-1)]))[0, 1])
            if abs(corr) > 0.5 or not (0.75 < float(noise.std()) < 1.25):
                return (f"expected x_t = sqrt(alpha-bar_t) x_0 + sqrt(1 - alpha-bar_t) eps with eps ~ N(0, I) independent "
                        f"of x_0, got x_t whose implied eps has standard deviation {float(noise.std()):.3g} and "
                        f"correlation {corr:.2f} with x_0", _SPY_X_T_HINT)
            return f"expected the loss {float(expected):.5g}, got {got:.5g}", None
        grad = (2 * (out - noise) * x_t).mean()
        w_after = spy.w.detach()
        if torch.isclose(w_after, w_before):
            return (f"expected w to move by -lr * grad = {float(-lr * grad):.4g} after the step, got no change",
                    _SPY_UPDATE_HINT)
        if not torch.isclose(w_after, w_before - lr * grad, rtol=1e-4, atol=1e-7):
            return (f"expected w to move by -lr * grad = {float(-lr * grad):.4g}, got {float(w_after - w_before):.4g}",
                    _SPY_UPDATE_HINT)
    if any(float((noises[0] - n).abs().mean()) < 1e-2 for n in noises[1:]):     # float32 recovery differs by rounding only
        return "expected a new eps at every step, got the same eps in two steps", _SPY_NOISE_HINT
    all_t = torch.cat(ts)
    if int(all_t.max()) != T or int(all_t.min()) != 1:
        return (f"expected t drawn uniformly from 1..{T} (both ends appear in {len(all_t)} draws), got values from "
                f"{int(all_t.min())} to {int(all_t.max())}", _SPY_T_HINT)
    return None


def _training_case(fn, data, held_out, schedule, seed):
    """Train md.MLP with the learner's step for a fixed budget; grade the held-out loss against the exact floor."""
    from .models import MLP

    x_h, t_h, n_h, floor = held_out
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(seed)
        model = MLP()
        opt = torch.optim.Adam(model.parameters(), lr=TRAIN_LR)
        g, gd = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed + 1)
        with contextlib.redirect_stdout(io.StringIO()):        # a step that prints its loss must not flood the cell
            for _ in range(TRAIN_STEPS):
                fn(model, opt, data[torch.randint(0, data.shape[0], (TRAIN_BATCH,), generator=gd)], schedule, g)
        with torch.no_grad():
            loss = float(epsilon_loss(model, x_h, schedule, t=t_h, noise=n_h))
    finally:
        torch.set_num_threads(threads)
    if not math.isfinite(loss) or loss > floor * (1 + TRAIN_WITHIN):
        return (f"expected a held-out L_simple within {TRAIN_WITHIN:.0%} of the exact floor {floor:.4f} after "
                f"{TRAIN_STEPS} steps, got {loss:.4f} ({loss / floor - 1:+.0%})", None)
    return None


def _training_inputs():
    from .analytic import sample_mixture

    mixture = toy_mixture("eight_gaussians")
    exact = GaussianMixtureDenoiser(*mixture, LONG)
    g = torch.Generator().manual_seed(2032)
    x_h = sample_mixture(*mixture, 4096, generator=g).float()
    t_h, n_h = torch.randint(1, LONG.T + 1, (4096,), generator=g), torch.randn(4096, 2, generator=g)
    floor = float(epsilon_loss(exact, x_h.double(), LONG, t=t_h, noise=n_h.double()))
    data = sample_mixture(*mixture, 20_000, generator=g).float()
    return data, (x_h, t_h, n_h, floor)


def _training_step_cases():
    g = torch.Generator().manual_seed(2033)
    data, held_out = _training_inputs()
    return [Case("a spy model with SGD (lr 0.01) on the short schedule (T = 10), batch 64: what your step draws and returns",
                 {"mode": "spy", "x0": 5 * torch.randn(64, 2, generator=g), "schedule": SHORT, "seed": 0, "lr": 0.01}),
            Case(f"training md.MLP on eight Gaussians: {TRAIN_STEPS} steps of batch {TRAIN_BATCH}, Adam {TRAIN_LR:g}",
                 {"mode": "train", "data": data, "held_out": held_out, "schedule": LONG, "seed": 0})]


def _training_step_checker(fn, mode, **inputs):
    return _spy_case(fn, **inputs) if mode == "spy" else _training_case(fn, **inputs)


def training_step(model, optimizer, x0_batch, schedule, generator):
    """DDPM Algorithm 1, one step: t ~ Uniform{1..T}, eps ~ N(0, I), a gradient step on L_simple; the loss."""
    t = torch.randint(1, schedule.T + 1, (x0_batch.shape[0],), generator=generator)
    noise = torch.randn(x0_batch.shape, generator=generator, dtype=x0_batch.dtype)
    loss = epsilon_loss(model, x0_batch, schedule, t=t, noise=noise)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


def _training_step_with(t_low=1, target="noise", fixed_noise=False, zero_grad=True, values_fn=lambda s: s.alpha_bars):
    cache = {}

    def f(model, optimizer, x0_batch, schedule, generator):
        B = x0_batch.shape[0]
        t = torch.randint(t_low, schedule.T + t_low, (B,), generator=generator)
        if fixed_noise:
            noise = cache.setdefault(tuple(x0_batch.shape), torch.randn(x0_batch.shape, generator=generator))
        else:
            noise = torch.randn(x0_batch.shape, generator=generator)
        v = values_fn(schedule)[t].to(x0_batch.dtype).reshape(-1, *([1] * (x0_batch.dim() - 1)))
        x_t = v.sqrt() * x0_batch + (1 - v).sqrt() * noise
        loss = ((model(x_t, t) - (noise if target == "noise" else x0_batch)) ** 2).mean()
        if zero_grad:
            optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()
    return f


_register(
    "training_step",
    hints=("one step of DDPM's training: pick a random time and noise, noise the data to that time, and move the "
           "network toward predicting that noise",
           "notebook 03, sections 1-2 (From the posterior mean to predicting eps; Training, and the floor); DDPM "
           "Algorithm 1 and eq. 14"),
    cases=_training_step_cases,
    reference=training_step,
    checker=_training_step_checker,
    mistakes={
        _SPY_T_HINT: _training_step_with(t_low=0),
        _SPY_TARGET_HINT: _training_step_with(target="x0"),
        _SPY_NOISE_HINT: _training_step_with(fixed_noise=True),
        _SPY_UPDATE_HINT: _training_step_with(zero_grad=False),
        _SPY_X_T_HINT: _training_step_with(values_fn=lambda s: s.alphas),
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
    forbidden=("sampling.sample", "sampling.ddim", "sampling.ddpm"),
    hints=('the whole sampler: walk the subsequence tau from its end down to x_0, one DDIM step at a time',
           'notebook 04, section 3 and notebook 05, section 1; DDIM eq. 12 over tau (sec. 4.2)'),
    cases=_sampler_cases,
    reference=lambda model, x_T, schedule, timesteps, eta, generator: sampling.sample(
        model, x_T, schedule, timesteps, eta, generator=generator),
    mistakes={
        "the last step must go from tau_1 to 0 (x_0); your loop stops at x_{tau_1}": _sample_with(last_step=False),
        "you ignored eta: pass it to every step": _sample_with(eta_used=False),
    }, rtol=1e-6, atol=1e-8)


# derivations answered as functions and numbers (notebook 04, section 4 and DDPM eq. 12)
COSINE = Schedule.cosine(100)


def _schedule_cases():
    return [Case("the DDPM linear schedule (T = 1000)", {"schedule": LONG}),
            Case("a short schedule (T = 10)", {"schedule": SHORT}),
            Case("a cosine schedule (T = 100)", {"schedule": COSINE})]


def eta_one_variances(schedule):
    """(sigma_t^2 from DDIM eq. 16 with eta = 1 and t_prev = t - 1, tilde-beta_t from DDPM eq. 7), t = 1..T."""
    t = torch.arange(1, schedule.T + 1)
    return sampling.ddim_sigma(schedule, t, t - 1, 1.0) ** 2, schedule.beta_tildes[1:]


def _eta_one_with(square=True, eta=1.0, off_by_one=False, include_zero=False):
    def f(schedule):
        t = torch.arange(1, schedule.T + 1)
        s = sampling.ddim_sigma(schedule, t, t - 1, eta)
        ab = schedule.alpha_bars
        bt = (1 - ab[t if off_by_one else t - 1]) / (1 - ab[t]) * schedule.betas[t]
        if include_zero:
            return torch.cat([s.new_zeros(1), s**2]), torch.cat([bt.new_zeros(1), bt])
        return (s**2 if square else s), bt
    return f


_register(
    "eta_one_variances",
    hints=("with eta = 1 and unit strides, DDIM's noise variance sigma_t^2 should be exactly DDPM's posterior "
           "variance tilde-beta_t: the generative process is DDPM's",
           "notebook 04, sections 1 and 3 (the family q_sigma; eta); DDIM eq. 16 against DDPM eq. 7"),
    cases=_schedule_cases,
    reference=eta_one_variances,
    mistakes={
        "sigma_t is a standard deviation: return its square, the variance sigma_t^2": _eta_one_with(square=False),
        "use eta = 1 (DDPM's stochasticity), not eta = 0": _eta_one_with(eta=0.0),
        "tilde-beta_t has alpha-bar_{t-1} in its numerator (1 - alpha-bar_{t-1}), not alpha-bar_t: that gives beta_t":
            _eta_one_with(off_by_one=True),
        "return t = 1..T only (T values): t = 0 has no step before it": _eta_one_with(include_zero=True),
    }, rtol=1e-6, atol=1e-12)


def _gamma_cases():
    g = torch.Generator().manual_seed(2034)
    out = []
    for label, s, eta, t in (("random t >= 2, eta = 0.5", LONG, 0.5, torch.randint(2, LONG.T + 1, (6,), generator=g)),
                             ("eta = 1 (DDPM's posterior variance)", LONG, 1.0, torch.tensor([2, 10, 300, 1000])),
                             ("t = 2 and t = T, eta = 0.2", LONG, 0.2, torch.tensor([2, LONG.T])),
                             ("a short schedule (T = 10), eta = 0.8", SHORT, 0.8, torch.arange(2, 11)),
                             ("a cosine schedule (T = 100), eta = 0.6", COSINE, 0.6, torch.tensor([2, 50, 99]))):
        out.append(Case(label, {"t": t, "schedule": s, "sigma": sampling.ddim_sigma(s, t, t - 1, eta)}))
    return out


def gamma_weight(t, schedule, sigma):
    """DDIM Theorem 1's weight for t >= 2, derived here (app. B's proof writes 1/(2 d sigma_t^2 alpha_t) instead):
    KL(q_sigma(x_{t-1} | x_t, x_0) || p_theta(x_{t-1} | x_t)) =
    gamma_t ||eps - eps_theta(x_t, t)||^2 for p_theta's step with the same sigma_t and x_0 replaced by its eps
    estimate, so J_sigma = L_gamma + C.  gamma_t = (sqrt(ab_{t-1} (1 - ab_t) / ab_t) - sqrt(1 - ab_{t-1} - sigma_t^2))^2
    / (2 sigma_t^2); with sigma_t^2 = tilde-beta_t it is DDPM eq. 12's beta_t^2 / (2 sigma_t^2 alpha_t (1 - ab_t))."""
    ab, ab_prev = schedule.alpha_bars[t], schedule.alpha_bars[t - 1]
    sigma2 = sigma.to(ab.dtype) ** 2
    coef = (ab_prev * (1 - ab) / ab).sqrt() - (1 - ab_prev - sigma2).clamp(min=0).sqrt()
    return coef**2 / (2 * sigma2)


def _gamma_with(half=True, square_sigma=True, ddpm_form=False, values_fn=lambda s: s.alpha_bars):
    def f(t, schedule, sigma):
        ab, ab_prev = values_fn(schedule)[t], values_fn(schedule)[t - 1]
        s2 = sigma.to(ab.dtype) ** (2 if square_sigma else 1)
        if ddpm_form:
            beta, alpha = schedule.betas[t], schedule.alphas[t]
            return beta**2 / (2 * s2 * alpha * (1 - schedule.alpha_bars[t]))
        coef = (ab_prev * (1 - ab) / ab).sqrt() - (1 - ab_prev - sigma.to(ab.dtype) ** 2).clamp(min=0).sqrt()
        return coef**2 / ((2 if half else 1) * s2)
    return f


_register(
    "gamma_weight",
    hints=("gamma_t: how much DDIM's objective J_sigma weighs the eps error at time t; it depends on sigma_t, and "
           "for every sigma the minimizer is the same eps model (Theorem 1)",
           "notebook 04, section 4 (Theorem 1: one model for all eta); DDIM Theorem 1 and its proof in app. B, "
           "with DDIM eq. 7's mean"),
    cases=_gamma_cases,
    reference=gamma_weight,
    mistakes={
        "the weight of DDPM eq. 12's form is J_sigma's only for sigma_t^2 = tilde-beta_t: for other sigma_t the mean "
        "of q_sigma (DDIM eq. 7) puts sqrt(1 - alpha-bar_{t-1} - sigma_t^2) in front of the direction to x_t": _gamma_with(ddpm_form=True),
        "the Gaussian KL with equal variances is ||mean difference||^2 / (2 sigma_t^2): missing factor 1/2":
            _gamma_with(half=False),
        "divide by the variance sigma_t^2, not the standard deviation sigma_t": _gamma_with(square_sigma=False),
        "that is the weight of DDIM's appendix B, 1 / (2 sigma_t^2 alpha-bar_t) (per dimension): a positive weight that "
        "proves the theorem, not the exact one; the exact gamma_t keeps the squared coefficient of x_0 - x0_hat":
            lambda t, schedule, sigma: 1 / (2 * sigma.to(torch.float64) ** 2 * schedule.alpha_bars[t]),
        "DDIM's alpha_t is DDPM's alpha-bar_t: use schedule.alpha_bars, not schedule.alphas":
            _gamma_with(values_fn=lambda s: s.alphas),
    }, rtol=1e-6, atol=1e-12)


def bound_eps_weight(schedule):
    """DDPM eq. 12's weight on ||eps - eps_theta||^2 with sigma_t^2 = beta_t, for t = 0..T (inf at t = 0):
    beta_t^2 / (2 sigma_t^2 alpha_t (1 - alpha-bar_t)) = beta_t / (2 alpha_t (1 - alpha-bar_t))."""
    w = schedule.betas / (2 * schedule.alphas * (1 - schedule.alpha_bars))
    w[0] = float("inf")
    return w


def least_weighted_t(schedule):
    """The t in 1..T at which DDPM eq. 12's weight (sigma_t^2 = beta_t) is smallest."""
    return int(torch.argmin(bound_eps_weight(schedule)[1:])) + 1


def _least_with(zero_based=False, argmax=False, beta_tilde=False, alpha_bar=False):
    def f(schedule):
        beta = schedule.betas[1:]
        s2 = schedule.beta_tildes[1:].clamp(min=1e-30) if beta_tilde else beta
        a = (schedule.alpha_bars if alpha_bar else schedule.alphas)[1:]
        w = beta**2 / (2 * s2 * a * (1 - schedule.alpha_bars[1:]))
        k = int(torch.argmax(w) if argmax else torch.argmin(w))
        return k if zero_based else k + 1
    return f


_register(
    "least_weighted_t",
    hints=("the bound weighs the eps error at each t; L_simple drops the weights, so it puts relatively more effort "
           "where the bound's weight is smallest",
           "notebook 03, section 1; DDPM eq. 12 with sigma_t^2 = beta_t "
           "and sec. 3.4 (L_simple as a reweighted bound)"),
    cases=_schedule_cases,
    reference=least_weighted_t,
    mistakes={
        "0-based: t runs 1..T; the index into betas[1:] is t - 1": _least_with(zero_based=True),
        "that is where the weight is largest: the question asks for the smallest": _least_with(argmax=True),
        "sigma_t^2 = beta_t here (DDPM's first choice), not tilde-beta_t": _least_with(beta_tilde=True),
        "eq. 12 has alpha_t = 1 - beta_t (one step) in the denominator, beside 1 - alpha-bar_t": _least_with(alpha_bar=True),
    })


# -- 05 subsequences and encoding ---------------------------------------------------------------------------
_register(
    "uniform_timesteps",
    forbidden=("sampling.timesteps",),
    hints=('tau: S evenly spread times in 1..T at which the fast sampler evaluates the model',
           'notebook 05, section 1 (Subsequences tau); DDIM sec. 4.2 and app. D.2'),
    cases=lambda: [Case(f"T = {T}, S = {S}", {"T": T, "S": S}) for T, S in ((1000, 10), (1000, 50), (1000, 30), (10, 10), (7, 1))],
    reference=lambda T, S: sampling.timesteps(T, S, "uniform").tolist(),
    mistakes={
        "0-based: this course's time runs 1..T, so add one to floor((i - 1) T / S) (the official code's "
        "range(0, T, T // S) when S divides T)":
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
           'notebook 05, section 3 (Interpolation); DDIM sec. 5.3 and app. D.5, eq. 67'),
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
           'notebook 05, section 3 (Encoding data into x_T and back); DDIM sec. 4.3 and eq. 13'),
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
           'notebook 06, section 1 (The score of q(x_t)); DDPM sec. 3.2 / Song & Ermon'),
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
    # at t = 1, 1 - alpha-bar_1 = beta_1 = 1e-4 loses up to ~3e-4 (relative, before the square root: float32's
    # half-spacing 3e-8 near 1 over 1e-4; about half that after it) when
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
           'notebook 06, section 4 (Langevin dynamics); Song & Ermon 2019, eq. 4'),
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
           'notebook 06, section 6 (The probability-flow ODE); DDIM eqs. 13-14'),
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
    # coefficients): they differ by rounding only, far below rtol; every listed mistake is off by far more
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
    forbidden=("sampling.heun",),
    hints=('a second-order ODE step: an Euler trial step, then the step retaken with the mean of both slopes',
           "notebook 06, section 6; DDIM eq. 14 with Heun's method"),
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


# -- 08 beyond sampling: inpainting and the progressive code's rate -------------------------------------------
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
           'notebook 08, section 4 (Inpainting with an unconditional model)'),
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
           'notebook 08, section 1 (Progressive lossy compression); DDPM sec. 4.3, Algorithms 3-4'),
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
    # float32 sums of 1001 terms in another order (a loop over t, total minus a prefix sum) differ by rounding
    # (at most about 1001 x 6e-8 relative, ~1e-4);
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
    forbidden=("sampling.replace_known", "sampling.inpaint"),
    hints=("one inpainting step: the sampler's DDIM step, then the known pixels replaced at the new time",
           'notebook 08, section 4; DDIM eq. 12 followed by the replacement step'),
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
