"""The answer key of exercise 01: the forward process (solutions/01_forward_process.py).

For each question: the inputs it is checked on, the package's reference and the known mistakes, each with its
hint (see :mod:`minddim.grading.spec`).
"""

from __future__ import annotations

import torch

from ... import diffusion
from ..spec import Case, register
from ._cases import COSINE, LONG, SHORT, _per, _randn, _time_cases


def _betas_cases():
    return [Case("the DDPM linear schedule (T = 1000)", {"betas": LONG.betas.clone()}),
            Case("a short schedule (T = 10)", {"betas": SHORT.betas.clone()}),
            Case("T = 3, float64", {"betas": torch.tensor([0.0, 0.1, 0.2, 0.3], dtype=torch.float64)})]


register(
    "alpha_bars",
    forbidden=("schedules.Schedule.from_betas", "schedules.Schedule.__init__"),
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


register(
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


register(
    "q_step",
    hints=('one step of the forward chain: shrink x_{t-1} a little and add a little noise (a unit variance stays 1)',
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


# -- a derivation: when does x_t stop resembling x_0? -------------------------------------------------------------
def _corr(values, var):
    """corr(x_0, x_t) per t when ``values`` holds alpha-bar_t (the mistakes pass other values)."""
    return (values * var / (values * var + 1 - values)).sqrt()


def _first_below(corr, level):
    """The smallest t in 1..T with corr[t] < level (corr indexed by t = 0..T), or None."""
    below = (corr[1:] < level).nonzero()
    return int(below[0]) + 1 if len(below) else None


def decorrelation_time(schedule, var, level):
    """The first t at which corr(x_0, x_t) < level for one coordinate of data with variance var: by DDPM eq. 4,
    Cov(x_0, x_t) = sqrt(alpha-bar_t) var and Var x_t = alpha-bar_t var + 1 - alpha-bar_t, so
    corr = sqrt(alpha-bar_t var / (alpha-bar_t var + 1 - alpha-bar_t)); None if it never falls below level."""
    return _first_below(_corr(schedule.alpha_bars, var), level)


def _decorrelation_with(corr_fn, shift=0):
    def f(schedule, var, level):
        t = _first_below(corr_fn(schedule, var), level)
        return None if t is None else t - shift
    return f


def _decorrelation_cases():
    """Cases whose answers no two listed mistakes share on the first (tests/test_exercise_01.py); every crossing is
    clear of rounding (corr at t - 1 and at t differ from level by far more than float64's precision)."""
    return [Case("linear: var 4 and level 0.5", {"schedule": LONG, "var": 4.0, "level": 0.5}),
            Case("linear: var 0.25 and level 0.5", {"schedule": LONG, "var": 0.25, "level": 0.5}),
            Case("cosine: var 1 and level 0.9", {"schedule": COSINE, "var": 1.0, "level": 0.9}),
            Case("cosine: var 0.5 and level 0.3", {"schedule": COSINE, "var": 0.5, "level": 0.3}),
            Case("a short schedule (T = 10): var 0.5 and level 0.5", {"schedule": SHORT, "var": 0.5, "level": 0.5}),
            Case("a level never reached (linear: var 1 and level 0.001)",
                 {"schedule": LONG, "var": 1.0, "level": 0.001})]


register(
    "decorrelation_time",
    hints=("how long a coordinate of x_t still resembles x_0: the correlation of x_0 and x_t over the data and the "
           "noise, Cov(x_0, x_t) / (std x_0 std x_t), which needs both the covariance and the variance of x_t",
           "notebook 01, section 2 (Jumping to any t): write x_t = sqrt(alpha-bar_t) x_0 + sqrt(1 - alpha-bar_t) eps "
           "(DDPM eq. 4) with x_0 and eps independent, and take the covariance and the variances"),
    cases=_decorrelation_cases,
    reference=decorrelation_time,
    mistakes={
        "off by one: return the time t itself (1-based: alpha_bars[t] is alpha-bar_t), the first t whose "
        "correlation is below level, not an index into alpha_bars[1:] or the last t above level":
            _decorrelation_with(lambda s, v: _corr(s.alpha_bars, v), shift=1),
        "you used alpha_t, one step's signal, where alpha-bar_t belongs: x_t is t steps away from x_0":
            _decorrelation_with(lambda s, v: _corr(s.alphas, v)),
        "Var x_t = 1 only for data of unit variance: in general Var x_t = alpha-bar_t var + 1 - alpha-bar_t":
            _decorrelation_with(lambda s, v: (s.alpha_bars * v).sqrt()),
        "the data's variance is missing: sqrt(alpha-bar_t) is the correlation only for var = 1":
            _decorrelation_with(lambda s, v: s.alpha_bars.sqrt()),
        "that is the covariance sqrt(alpha-bar_t) var: the correlation divides it by std(x_0) std(x_t)":
            _decorrelation_with(lambda s, v: s.alpha_bars.sqrt() * v),
        "you compared the squared correlation (the share of Var x_t that x_0 explains) with level; compare the "
        "correlation itself, its square root":
            _decorrelation_with(lambda s, v: _corr(s.alpha_bars, v) ** 2),
    })
