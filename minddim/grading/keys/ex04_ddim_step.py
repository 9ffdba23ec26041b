"""The answer key of exercise 04: DDIM's step, sampler and weights (solutions/04_ddim_step.py).

For each question: the inputs it is checked on, the package's reference and the known mistakes, each with its
hint (see :mod:`minddim.grading.spec`).
"""

from __future__ import annotations

import math

import torch

from ... import sampling
from ...schedules import Schedule
from ..spec import Case, register
from ._cases import COSINE_100, LONG, SHORT, _gaussian_model, _per, _randn, _rows, _time_cases


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


register(
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
        sigma = _rows(sampling.ddim_sigma(schedule, t, t_prev, eta if eta_used else 0.0), x_t)
        x0 = (x_t - (1 - ab).sqrt() * eps) / ab.sqrt()
        direction = (1 - abp - (sigma**2 if sigma_in_direction else 0)).sqrt() * eps
        return abp.sqrt() * x0 + direction + (sigma if std else sigma**2) * noise
    return f


register(
    "ddim_step",
    forbidden=("diffusion.q_sigma_posterior",),   # DDIM eq. 7 at x_0's estimate, plus sigma * noise, is the step
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


register(
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


def _schedule_cases():
    return [Case("the DDPM linear schedule (T = 1000)", {"schedule": LONG}),
            Case("a short schedule (T = 10)", {"schedule": SHORT}),
            Case("a cosine schedule (T = 100)", {"schedule": COSINE_100})]


class _WithoutBetaTildes(Schedule):
    """A schedule whose ``beta_tildes`` cannot be read: ``eta_one_variances`` writes tilde-beta_t out (DDPM eq. 7)."""

    @property
    def beta_tildes(self):
        raise AttributeError("this check's schedule has no beta_tildes: write tilde-beta_t out from betas and "
                             "alpha_bars (DDPM eq. 7)")


def _eta_one_cases():
    g = torch.Generator().manual_seed(2036)
    out = []
    for label, s in (("the DDPM linear schedule (T = 1000)", LONG), ("a short schedule (T = 10)", SHORT),
                     ("a cosine schedule (T = 100)", COSINE_100)):
        t = torch.arange(1, s.T + 1)
        out.append(Case(f"unit strides t = 1..T, {label}", {"schedule": _WithoutBetaTildes(s.betas), "t": t,
                                                              "t_prev": t - 1}))
    t = torch.arange(10, LONG.T + 1, 10)
    out.append(Case("stride 10 (t = 10, 20, ..., 1000, t_prev = t - 10), the linear schedule",
                    {"schedule": _WithoutBetaTildes(LONG.betas), "t": t, "t_prev": t - 10}))
    t = torch.randint(2, COSINE_100.T + 1, (8,), generator=g)
    out.append(Case("random t_prev < t, the cosine schedule (T = 100)",
                    {"schedule": _WithoutBetaTildes(COSINE_100.betas), "t": t,
                     "t_prev": (t * torch.rand(8, generator=g)).long()}))
    return out


def eta_one_variances(schedule, t, t_prev):
    """(sigma^2 from DDIM eq. 16 with eta = 1 for the steps t -> t_prev, tilde-beta_t from DDPM eq. 7), shape
    (batch,) each.  The two agree exactly when t_prev = t - 1."""
    return sampling.ddim_sigma(schedule, t, t_prev, 1.0) ** 2, Schedule.beta_tildes.fget(schedule)[t]


def _eta_one_with(square=True, eta=1.0, off_by_one=False, sigma_unit=False, tilde_prev=False):
    def f(schedule, t, t_prev):
        s = sampling.ddim_sigma(schedule, t, t - 1 if sigma_unit else t_prev, eta)
        ab = schedule.alpha_bars
        num = t if off_by_one else (t_prev if tilde_prev else t - 1)
        bt = (1 - ab[num]) / (1 - ab[t]) * schedule.betas[t]
        return (s**2 if square else s), bt
    return f


register(
    "eta_one_variances",
    hints=("with eta = 1 and unit strides, DDIM's noise variance sigma_t^2 should be exactly DDPM's posterior "
           "variance tilde-beta_t: the generative process is DDPM's; over longer strides sigma^2 is the variance of a "
           "jump t -> t_prev, not of one step",
           "notebook 04, sections 1 and 3 (the family q_sigma; eta); DDIM eq. 16 against DDPM eq. 7"),
    cases=_eta_one_cases,
    reference=eta_one_variances,
    mistakes={
        "sigma is a standard deviation: return its square, the variance sigma^2": _eta_one_with(square=False),
        "use eta = 1 (DDPM's stochasticity), not eta = 0": _eta_one_with(eta=0.0),
        "tilde-beta_t has alpha-bar_{t-1} in its numerator (1 - alpha-bar_{t-1}), not alpha-bar_t: that gives beta_t":
            _eta_one_with(off_by_one=True),
        "sigma is the one of the step t -> t_prev: give your ddim_sigma t_prev, not t - 1": _eta_one_with(sigma_unit=True),
        "tilde-beta_t is the variance of DDPM's one-step posterior q(x_{t-1} | x_t, x_0), whatever t_prev is: "
        "alpha-bar_{t-1} in its numerator, not alpha-bar at t_prev": _eta_one_with(tilde_prev=True),
    }, rtol=1e-6, atol=1e-12)


def _gamma_cases():
    g = torch.Generator().manual_seed(2034)
    out = []
    for label, s, eta, t in (("random t >= 2, eta = 0.5", LONG, 0.5, torch.randint(2, LONG.T + 1, (6,), generator=g)),
                             ("eta = 1 (DDPM's posterior variance)", LONG, 1.0, torch.tensor([2, 10, 300, 1000])),
                             ("t = 2 and t = T, eta = 0.2", LONG, 0.2, torch.tensor([2, LONG.T])),
                             ("a short schedule (T = 10), eta = 0.8", SHORT, 0.8, torch.arange(2, 11)),
                             ("a cosine schedule (T = 100), eta = 0.6", COSINE_100, 0.6, torch.tensor([2, 50, 99]))):
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


register(
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
        "that is DDIM's appendix B weight, 1 / (2 d sigma_t^2 alpha_t) (eq. 32; its alpha_t is alpha-bar_t) without its "
        "1/d (your gamma multiplies the whole ||eps - eps_theta||^2): a positive weight that proves the theorem, not "
        "the exact one; the exact gamma_t keeps the squared coefficient of x_0 - x0_hat":
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


register(
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
        "the bound's weight that notebook 03 plots takes sigma_t^2 = beta_t (DDPM's first choice), not tilde-beta_t":
            _least_with(beta_tilde=True),
        "eq. 12 has alpha_t = 1 - beta_t (one step) in the denominator, beside 1 - alpha-bar_t": _least_with(alpha_bar=True),
    })




# a derivation that no notebook cell prints: the variance of DDIM's samples with the exact model on 1-D Gaussian data
def _variance_cases():
    return [Case("eta = 0.5, uniform S = 10, data variance 4 (the linear schedule, T = 1000)",
                 {"schedule": LONG, "timesteps": sampling.timesteps(1000, 10), "eta": 0.5, "lam": 4.0}),
            Case("eta = 1, uniform S = 20, data variance 0.2",
                 {"schedule": LONG, "timesteps": sampling.timesteps(1000, 20), "eta": 1.0, "lam": 0.2}),
            Case("eta = 0, quadratic S = 7, data variance 1.8",
                 {"schedule": LONG, "timesteps": sampling.timesteps(1000, 7, "quadratic"), "eta": 0.0, "lam": 1.8}),
            Case("eta = 1, a short schedule (T = 10), timesteps 2, 5, 10, data variance 3",
                 {"schedule": SHORT, "timesteps": torch.tensor([2, 5, 10]), "eta": 1.0, "lam": 3.0}),
            Case("eta = 0.3, trailing S = 5 (ends at T), data variance 0.5",
                 {"schedule": LONG, "timesteps": sampling.timesteps(1000, 5, "trailing"), "eta": 0.3, "lam": 0.5})]


def ddim_output_variance(schedule, timesteps, eta, lam):
    """Var[x_0] of DDIM's sampler (eq. 12 over tau, eta) with the exact model for 1-D data N(m, lam), x_T ~ N(0, 1)
    fed in at tau_S.  The exact eps-model is affine, E[eps | x_t] = sqrt(1 - ab) (x_t - sqrt(ab) m) / v_t with
    v_t = ab lam + 1 - ab, so each step is x' = a x + (const) + sigma z with
    a = (sqrt(ab' ab) lam + sqrt((1 - ab' - sigma^2)(1 - ab))) / v_t, and Var' = a^2 Var + sigma^2."""
    walk = [int(s) for s in timesteps.tolist()[::-1]] + [0]
    var = 1.0
    for t, tp in zip(walk[:-1], walk[1:]):
        ab, abp = float(schedule.alpha_bars[t]), float(schedule.alpha_bars[tp])
        s2 = float(sampling.ddim_sigma(schedule, torch.tensor([t]), torch.tensor([tp]), eta)[0]) ** 2
        a = (math.sqrt(abp * ab) * lam + math.sqrt(max(1 - abp - s2, 0.0) * (1 - ab))) / (ab * lam + 1 - ab)
        var = a * a * var + s2
    return var


def _variance_with(start="one", noise="var", direction_sigma=True, model_lam=True, last_step=True, square_a=True,
                   from_T=False):
    def f(schedule, timesteps, eta, lam):
        walk = [int(s) for s in timesteps.tolist()[::-1]] + ([0] if last_step else [])
        if from_T and walk[0] != schedule.T:
            walk = [schedule.T] + walk
        first = float(schedule.alpha_bars[walk[0]])
        var = 1.0 if start == "one" else first * lam + 1 - first
        m = lam if model_lam else 1.0
        for t, tp in zip(walk[:-1], walk[1:]):
            ab, abp = float(schedule.alpha_bars[t]), float(schedule.alpha_bars[tp])
            s2 = float(sampling.ddim_sigma(schedule, torch.tensor([t]), torch.tensor([tp]), eta)[0]) ** 2
            d = max(1 - abp - (s2 if direction_sigma else 0.0), 0.0)
            a = (math.sqrt(abp * ab) * m + math.sqrt(d * (1 - ab))) / (ab * m + 1 - ab)
            var = (a * a if square_a else a) * var + {"var": s2, "std": math.sqrt(s2), "none": 0.0}[noise]
        return var
    return f


register(
    "ddim_output_variance",
    forbidden=("sampling.sample", "sampling.ddim", "sampling.ddpm", "sampling.ddim_step", "sampling.ddim_sigma"),
    hints=("the exact model is the best any network can do, so what this variance misses of lam is the sampler's own "
           "error at S steps and this eta: every step is affine in x_t plus independent noise",
           "notebook 04, section 3 (DDIM eq. 12 and eta) with the exact model of notebook 05, Going further C (Gaussian "
           "data: E[eps | x_t] is affine in x_t); the variance of a x + sigma z with z independent of x"),
    cases=_variance_cases,
    reference=ddim_output_variance,
    mistakes={
        "the sampler starts from x_T ~ N(0, 1), as the sampler draws it: start from variance 1, not from the data's "
        "marginal alpha-bar lam + 1 - alpha-bar": _variance_with(start="marginal"),
        "the fresh noise sigma z is independent of x: it adds sigma^2 to the variance at every step with eta > 0":
            _variance_with(noise="none"),
        "sigma is a standard deviation: the noise adds its square, sigma^2, to the variance": _variance_with(noise="std"),
        "DDIM eq. 12's direction term is sqrt(1 - alpha-bar_prev - sigma^2) eps: you left out sigma^2":
            _variance_with(direction_sigma=False),
        "the exact model for data N(m, lam): E[eps | x_t] = sqrt(1 - alpha-bar) (x_t - sqrt(alpha-bar) m) / "
        "(alpha-bar lam + 1 - alpha-bar), not the one for unit variance": _variance_with(model_lam=False),
        "the last step goes from tau_1 to 0 (x_0); your walk stops at x_{tau_1}": _variance_with(last_step=False),
        "a step multiplies x by a, so it multiplies the variance by a^2": _variance_with(square_a=False),
        "x_T is fed in at tau_S, the largest entry of timesteps (as the sampler does): there is no extra step from T":
            _variance_with(from_T=True),
    }, rtol=1e-6, atol=1e-10)
