"""The answer key of exercise 06: scores, Langevin dynamics and the probability-flow ODE (solutions/06_scores_and_ode.py).

For each question: the inputs it is checked on, the package's reference and the known mistakes, each with its
hint (see :mod:`minddim.grading.spec`).
"""

from __future__ import annotations

import math

import torch

from ... import sampling
from ...analytic import GaussianMixtureDenoiser
from ...data import toy_mixture
from ...score import euler_step, langevin_step, score_from_eps
from ..spec import Case, register
from ._cases import LONG, SHORT, _per, _randn, _time_cases, _wavy_model


def _score_inputs(s, t, shape, dtype, g):
    return {"eps": _randn(shape, dtype, g), "t": t, "schedule": s}


def _score_with(values_fn=lambda s: s.alpha_bars, sign=-1.0, sqrt=True, divide=True):
    def f(eps, t, schedule):
        v = 1 - _per(values_fn(schedule), t, eps)
        scale = v.sqrt() if sqrt else v
        return sign * (eps / scale if divide else eps * scale)
    return f


register(
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


register(
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


register(
    "euler_step",
    hints=("DDIM's deterministic step seen as Euler's method on an ODE in rescaled variables x-bar and sigma",
           'notebook 06, section 6 (The probability-flow ODE); DDIM eqs. 13-14'),
    cases=lambda: _time_cases(_euler_inputs),
    reference=lambda x_t, eps, t, t_prev, schedule: euler_step(x_t, eps, t, t_prev, schedule),
    forbidden=("sampling.ddim_step",),      # algebraically the same step (eta = 0): the package's answer again
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
               correct=True, euler=euler_step):
    def f(model, x_t, t, t_prev, schedule):
        eps = model(x_t, t)
        x_euler = euler(x_t, eps, t, t_prev, schedule)
        if not correct:
            return x_euler
        eps_prime = model(x_euler if at_euler_point else x_t, t_prev if at_t_prev else t)
        slope = average * ((eps if first_slope else 0 * eps) + eps_prime)
        return euler(x_t if restart_at_x_t else x_euler, slope, t, t_prev, schedule)
    return f


register(
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




# -- the chain's variance along the way (a derivation) --------------------------------------------------------------
def _variance_cases():
    def case(label, lam, step_size, k, v0):
        return Case(label, {"lam": lam, "step_size": step_size, "k": k, "v0": v0})
    return [case("lambda = 1, step size 0.5, 10 steps from v0 = 1", 1.0, 0.5, 10, 1.0),
            case("a large step size: lambda = 0.2, step size 0.3, 3 steps from v0 = 2", 0.2, 0.3, 3, 2.0),
            case("started at a point (v0 = 0), lambda = 2, step size 1.0, 4 steps", 2.0, 1.0, 4, 0.0),
            case("k = 0: the start", 0.5, 0.1, 0, 3.0),
            case("k = 1, lambda = 1.5, step size 2.0, v0 = 0.5", 1.5, 2.0, 1, 0.5),
            case("long after the start: lambda = 0.3, step size 0.2, 500 steps from v0 = 1", 0.3, 0.2, 500, 1.0)]


def _variance_with(drift=0.5, noise_var=lambda d: d, square=True, decay_power=2, k_shift=0, limit=None, keep_v0=True):
    def f(lam, step_size, k, v0):
        a = 1 - drift * step_size / lam
        contraction = a * a if square else a
        v_inf = noise_var(step_size) / (1 - contraction) if limit is None else limit(lam, step_size)
        decay = a ** (decay_power * (k + k_shift)) if square else a ** (k + k_shift)
        return v_inf + decay * ((v0 if keep_v0 else 0.0) - v_inf)
    return f


def _langevin_variance(lam, step_size, k, v0):
    """The reference: v_k = a^2 v_(k-1) + delta with a = 1 - delta / (2 lam), solved (tests: Monte Carlo, and the
    package's stationary covariance as k grows)."""
    a2 = (1 - step_size / (2 * lam)) ** 2
    v_inf = step_size / (1 - a2)
    return v_inf + a2 ** k * (v0 - v_inf)


register(
    "langevin_variance",
    hints=("the variance of x_k for the Langevin chain of question 2 on N(0, lambda): a recursion v_k = f(v_{k-1}) "
           "that the chain's one step gives, then its solution",
           "notebook 06, section 4 and Going further B and E (where the chain ends, k -> infinity); "
           "Song & Ermon 2019, eq. 4"),
    cases=_variance_cases,
    reference=_langevin_variance,
    mistakes={
        "that ignores the step-size bias: the chain's variance does not tend to lambda at a fixed step size; solve "
        "v = (1 - delta / (2 lambda))^2 v + delta": _variance_with(limit=lambda lam, d: lam),
        "lambda (1 + delta / (4 lambda)) is only the first-order expansion of where the chain ends; solve the "
        "fixed-point equation exactly": _variance_with(limit=lambda lam, d: lam + d / 4),
        "the variance of a x is a^2 Var(x): with a = 1 - delta / (2 lambda) the recursion is v_k = a^2 v_(k-1) + delta, "
        "and the start's variance decays by a^2 per step": _variance_with(square=False),
        "the start's variance decays by a^2 per step, a = 1 - delta / (2 lambda): after k steps by a^(2k), not a^k":
            _variance_with(decay_power=1),
        "the noise sqrt(delta) z adds variance delta, not delta^2 (or the noise of question 2 is sqrt(delta) z, not "
        "delta z)": _variance_with(noise_var=lambda d: d * d),
        "the drift of question 2 is delta / 2 * score: with the score -x / lambda, a = 1 - delta / (2 lambda)":
            _variance_with(drift=1.0),
        "count the steps: x_0 has variance v0 and each step applies the recursion once, so k steps multiply the start's "
        "offset by a^(2k)": _variance_with(k_shift=1),
        "the start's variance v0 does not vanish at once: its offset from the chain's limit decays by a^2 per step":
            _variance_with(keep_v0=False),
    }, rtol=1e-6, atol=1e-9)


# -- the order of a sampler, measured (a measurement) ----------------------------------------------------------------
_fast_euler = _euler_with()        # DDIM's (Euler's) step in x-bar form, without the package's input checks


def _euler_as_step(model, x_t, t, t_prev, schedule):
    """DDIM's (Euler's) step with heun_step's signature."""
    return _fast_euler(x_t, model(x_t, t), t, t_prev, schedule)


_heun_as_step = _heun_with(euler=_fast_euler)     # Heun's step (the package's heun_step for t_prev >= 1), unchecked


def _order_cases():
    from ._cases import _gaussian_model
    g = torch.Generator().manual_seed(2027)

    def case(label, step, t_mid, Ss):
        return Case(label, {"step": step, "model": _gaussian_model(LONG), "x_T": _randn((40, 2), torch.float64, g),
                            "schedule": LONG, "Ss": Ss, "t_mid": t_mid})
    return [case("Heun's step, t_mid = 100, S = 10, 20, 50, 100", _heun_as_step, 100, (10, 20, 50, 100)),
            case("Euler's (DDIM's) step, t_mid = 500, S = 10, 20, 50, 100", _euler_as_step, 500, (10, 20, 50, 100)),
            case("Heun's step, t_mid = 200, S = 5, 10, 20, 50", _heun_as_step, 200, (5, 10, 20, 50))]


def _order_errors(step, model, x_T, schedule, Ss, t_mid, last_step=True, sigma_fn=None, error="rms"):
    """Errors (at t_mid, at 0) of the walk on each trailing grid against the Gaussian flow map: the RMS distance
    (``error="rms"``, the reference's), or, for the mistakes, the mean squared distance ("mse") or the mean distance
    ("mean"); ``sigma_fn(schedule, t)`` is the flow map's noise level (DDIM's sigma_t unless a mistake changes it)."""
    from ...score import gaussian_flow_map
    sigma_fn = sigma_fn or (lambda s, t: math.sqrt((1 - s.alpha_bars[t].item()) / s.alpha_bars[t].item()))
    B, T = x_T.shape[0], schedule.T
    out = []
    for S in Ss:
        tau = sampling.timesteps(T, S, "trailing").tolist()        # T/S, 2T/S, ..., T where S divides T
        x, at_mid = x_T, None
        for t, t_prev in zip(tau[::-1], tau[::-1][1:]):
            x = step(model, x, torch.full((B,), t), torch.full((B,), t_prev), schedule)
            if t_prev == t_mid:
                at_mid = x
        if last_step:
            t1 = torch.full((B,), tau[0])
            x = _fast_euler(x, model(x, t1), t1, torch.zeros(B, dtype=torch.long), schedule)
        errors = []
        for x_end, t_end in ((at_mid, t_mid), (x, 0)):
            exact = gaussian_flow_map(x_T, sigma_fn(schedule, T), sigma_fn(schedule, t_end), model.mean, model.cov)
            d2 = (x_end - exact).pow(2).sum(1)
            errors.append(d2.mean().sqrt().item() if error == "rms" else
                          d2.mean().item() if error == "mse" else d2.sqrt().mean().item())
        out.append(errors)
    return out


def _ode_orders(step, model, x_T, schedule, Ss, t_mid):
    """The reference: least-squares slopes of log(RMS error) against log(S), at t_mid and at 0."""
    return _slopes(_order_errors(step, model, x_T, schedule, Ss, t_mid), Ss)


def _slopes(errors, x, swap_axes=False):
    """(slope at t_mid, slope at 0): least-squares slopes of log(errors[:, j]) against log(x) (swapped: the other
    way round)."""
    import numpy as np
    log_e, log_x = np.log(np.array(errors)), np.log(x)
    return tuple(float((np.polyfit(log_e[:, j], log_x, 1) if swap_axes else np.polyfit(log_x, log_e[:, j], 1))[0])
                 for j in (0, 1))


def _orders_with(against=lambda S: S, swap_axes=False, swap_outputs=False, **kw):
    def f(step, model, x_T, schedule, Ss, t_mid):
        errors = _order_errors(step, model, x_T, schedule, Ss, t_mid, **kw)
        slopes = _slopes(errors, [against(S) for S in Ss], swap_axes)
        return slopes[::-1] if swap_outputs else slopes
    return f


register(
    "ode_orders",
    forbidden=("sampling.heun", "sampling.sample", "sampling.ddim", "score.pf_ode_solve"),
    hints=("the order of a sampler is the slope of log(error) against log(S): -1 for a first-order method, -2 for a "
           "second-order one",
           "notebook 06, section 6 (The order of the samplers), which measures it on another model and reference, "
           "and against evaluations (2S - 1 for Heun) rather than S; the exact solution for Gaussian data: Going "
           "further E (md.gaussian_flow_map)"),
    cases=_order_cases,
    reference=_ode_orders,
    mistakes={
        "the slope is against S, the number of steps, not against the number of model evaluations":
            _orders_with(against=lambda S: 2 * S - 1),
        "the error is the RMS distance, the square root of the mean squared distance: the mean squared distance "
        "falls twice as steeply": _orders_with(error="mse"),
        "the error is the RMS distance, the square root of the mean squared distance, not the mean distance":
            _orders_with(error="mean"),
        "fit log(error) against log(S), not log(S) against log(error)": _orders_with(swap_axes=True),
        "return (slope to t_mid, slope to 0), in that order": _orders_with(swap_outputs=True),
        "walk all the way to 0: after tau_1 comes one last step to t = 0, Euler's (md.heun's convention)":
            _orders_with(last_step=False),
        "the exact solution's noise level is DDIM's sigma_t = sqrt((1 - alpha-bar_t) / alpha-bar_t) (md.ode_sigma), "
        "not sqrt(1 - alpha-bar_t)": _orders_with(sigma_fn=lambda s, t: math.sqrt(1 - s.alpha_bars[t].item())),
    },
    # a measured slope is accepted within 0.01: every route to the RMS errors (float64, the flow map or a solver at
    # tight tolerances) moves the slopes by far less, each listed mistake moves one of them by 0.015 or
    # more on some case (the mean distance instead of the RMS one: by 0.023 on the last case only)
    rtol=0.0, atol=0.01)
