"""Exercise 04 (DDIM's step): the new derivation question, ddim_output_variance, against independent routes.

The variance of the sampler's output with the exact model on 1-D Gaussian data N(m, lam), x_T ~ N(0, 1): checked
(a) against the package's sampler run on probes (eta = 0: the sampler is affine, x_0 = A x_T + b, so Var = A^2), and
with its noise injected one step at a time (any eta: the package's step is affine in x and in the noise, so each
step's noise enters x_0 with a coefficient read off by running the rest of the walk), (b) against a Monte Carlo run of
md.sample within four standard errors, and (c) for the claims the prompt's table makes (eta = 0 keeps more of lam than
eta = 1 at S = 10; eta = 0 keeps less than 95% at S = 50 and more at S = 100; every variance tends to lam as S grows).
The generic properties (reference passes, every mistake rejected with its hint, stub, ladder) are tested for every
question in tests/test_grading.py."""

import math
import re
from pathlib import Path

import pytest
import torch

import minddim as md
from minddim import grading
from minddim.grading.keys import ex04_ddim_step as answers
from minddim.grading.keys._cases import COSINE_100, LONG, SHORT


def test_the_questions_are_registered_with_the_solution_notebooks_points():
    sol = Path(__file__).resolve().parents[1] / "solutions" / "04_ddim_step.py"
    assert grading.questions(sol) == [("ddim_sigma", 1), ("ddim_step", 1), ("ddim_sample", 1),
                                      ("eta_one_variances", 1), ("gamma_weight", 1), ("least_weighted_t", 1),
                                      ("ddim_output_variance", 3)]


def _variance_by_the_package(schedule, tau, eta, lam, m=0.7):
    """Var[x_0] from md.ddim_step alone: x_0 = A x_T + sum_k B_k z_k + b; A and each B_k read off by running the
    walk on probes (the step is affine in x and in its noise), Var = A^2 + sum_k B_k^2."""
    exact = md.GaussianDenoiser(torch.tensor([m], dtype=torch.float64), torch.tensor([[lam]], dtype=torch.float64),
                                schedule)
    walk = tau.tolist()[::-1] + [0]
    steps = list(zip(walk[:-1], walk[1:]))

    def run(x, start, noise_at):
        for k, (t, tp) in enumerate(steps[start:], start):
            tb = torch.full((x.shape[0],), t)
            z = torch.zeros_like(x)
            if k == noise_at:
                z = z + torch.tensor([[0.0], [1.0]], dtype=torch.float64)
            x = md.ddim_step(x, exact(x, tb), tb, torch.full_like(tb, tp), schedule, eta, z)[0]
        return x

    probe = torch.tensor([[0.0], [1.0]], dtype=torch.float64)
    out = run(probe.clone(), 0, -1)
    var = float(out[1] - out[0]) ** 2
    for k in range(len(steps)):
        out = run(torch.zeros(2, 1, dtype=torch.float64), 0, k)      # the same x, noise 0 and 1 at step k only
        var += float(out[1] - out[0]) ** 2
    return var


@pytest.mark.parametrize("schedule,tau,eta,lam", [
    (LONG, md.timesteps(1000, 10), 0.0, 4.0),
    (LONG, md.timesteps(1000, 10), 0.5, 4.0),
    (LONG, md.timesteps(1000, 20), 1.0, 0.2),
    (LONG, md.timesteps(1000, 7, "quadratic"), 0.7, 1.8),
    (LONG, md.timesteps(1000, 5, "trailing"), 0.3, 0.5),
    (SHORT, torch.tensor([2, 5, 10]), 1.0, 3.0),
    (SHORT, torch.arange(1, 11), 1.0, 0.3),
])
def test_the_variance_is_the_package_samplers_read_off_its_affine_steps(schedule, tau, eta, lam):
    got = answers.ddim_output_variance(schedule, tau, eta, lam)
    assert math.isclose(got, _variance_by_the_package(schedule, tau, eta, lam), rel_tol=1e-9)


@pytest.mark.parametrize("eta,lam,S", [(0.0, 4.0, 10), (1.0, 4.0, 10), (0.5, 0.2, 20)])
def test_the_variance_is_md_samples_by_monte_carlo(eta, lam, S):
    n = 200_000
    g = torch.Generator().manual_seed(S)
    exact = md.GaussianDenoiser(torch.tensor([1.0], dtype=torch.float64), torch.tensor([[lam]], dtype=torch.float64), LONG)
    x = md.sample(exact, torch.randn(n, 1, generator=g, dtype=torch.float64), LONG, md.timesteps(1000, S), eta=eta,
                  generator=g)
    closed = answers.ddim_output_variance(LONG, md.timesteps(1000, S), eta, lam)
    assert abs(x.var().item() - closed) < 4 * closed * math.sqrt(2 / n), (x.var().item(), closed)


def test_the_claims_of_the_prompts_table():
    lam = 4.0
    share = {(S, eta): answers.ddim_output_variance(LONG, md.timesteps(1000, S), eta, lam) / lam
             for S in (10, 20, 50, 100, 1000) for eta in (0.0, 0.5, 1.0)}
    assert share[10, 0.0] > share[10, 0.5] > share[10, 1.0]
    assert share[50, 0.0] < 0.95 < share[100, 0.0]
    for eta in (0.0, 0.5, 1.0):
        assert [share[S, eta] for S in (10, 20, 50, 100, 1000)] == sorted(share[S, eta] for S in (10, 20, 50, 100, 1000))
        assert abs(share[1000, eta] - 1) < 0.01


def test_the_check_rejects_a_monte_carlo_answer():
    def monte_carlo(schedule, timesteps, eta, lam):
        exact = md.GaussianDenoiser(torch.zeros(1, dtype=torch.float64), torch.tensor([[lam]], dtype=torch.float64),
                                    schedule)
        g = torch.Generator().manual_seed(0)
        x, walk = torch.randn(20_000, 1, generator=g, dtype=torch.float64), timesteps.tolist()[::-1] + [0]
        for t, tp in zip(walk[:-1], walk[1:]):
            ab, abp = schedule.alpha_bars[t], schedule.alpha_bars[tp]
            s = eta * ((1 - abp) / (1 - ab) * (1 - ab / abp)).sqrt()
            e = exact(x, torch.full((x.shape[0],), t))
            x = abp.sqrt() * (x - (1 - ab).sqrt() * e) / ab.sqrt() + (1 - abp - s**2).sqrt() * e \
                + s * torch.randn(x.shape, generator=g, dtype=x.dtype)
        return x.var().item()

    v = grading.run_check("ddim_output_variance", monte_carlo)
    label = grading.CHECKS["ddim_output_variance"].cases()[v.cases].label
    assert not v.passed and re.match(rf"on {re.escape(label)}, expected \d", v.message), v.message    # a value, not a type


def test_calling_the_package_sampler_is_refused():
    def via_sample(schedule, timesteps, eta, lam):
        exact = md.GaussianDenoiser(torch.zeros(1), torch.tensor([[lam]]), schedule)
        return md.sample(exact, torch.randn(1000, 1), schedule, timesteps, eta=eta).var().item()

    v = grading.run_check("ddim_output_variance", via_sample)
    assert not v.passed and "your answer calls minddim.sample" in v.message


# -- eta_one_variances: the check sees both computations (sigma from DDIM eq. 16, tilde-beta written out) ----------
def test_eta_one_variances_agree_on_unit_strides_and_not_on_longer_ones():
    """The follow-up cell's claims: equal to 1e-12 for t_prev = t - 1 on every schedule the check uses; with stride
    10 sigma^2 is several times tilde-beta_t (the jump's posterior variance, not one step's)."""
    for s in (LONG, SHORT, COSINE_100):
        t = torch.arange(1, s.T + 1)
        sigma2, beta_tilde = answers.eta_one_variances(s, t, t - 1)
        assert float((sigma2 - beta_tilde).abs().max()) < 1e-12
        torch.testing.assert_close(beta_tilde, s.beta_tildes[1:], rtol=0, atol=0)
    t = torch.tensor([100, 500, 1000])
    sigma2, beta_tilde = answers.eta_one_variances(LONG, t, t - 10)
    assert bool(((sigma2 / beta_tilde) > 5).all())


def test_eta_one_variances_strided_sigma_is_the_posterior_variance_of_the_jump():
    """An independent route for the strided case: the forward process restricted to (t_prev, t) is one Gaussian jump
    with alpha = ab_t / ab_prev; the variance of q(x_{t_prev} | x_t, x_0) from the joint Gaussian of (x_prev, x_t)."""
    t, tp = torch.tensor([20, 300, 1000]), torch.tensor([10, 100, 990])
    sigma2, _ = answers.eta_one_variances(LONG, t, tp)
    for k in range(3):
        abp, ab = float(LONG.alpha_bars[tp[k]]), float(LONG.alpha_bars[t[k]])
        var_prev, var_t = 1 - abp, 1 - ab                    # given x_0
        cov = math.sqrt(ab / abp) * var_prev                  # x_t = sqrt(ab / abp) x_prev + noise
        assert math.isclose(float(sigma2[k]), var_prev - cov**2 / var_t, rel_tol=1e-9)


def test_eta_one_variances_cannot_be_passed_without_computing_sigma_and_tilde_beta():
    """The finding's answers: beta_tildes returned twice (or read at all) and tilde-beta written out twice all fail."""
    def read_twice(schedule, t, t_prev):
        return schedule.beta_tildes[t].clone(), schedule.beta_tildes[t]

    def read(schedule, t, t_prev):
        return md.ddim_sigma(schedule, t, t_prev, 1.0) ** 2, schedule.beta_tildes[t]

    def written_twice(schedule, t, t_prev):
        ab, abp = schedule.alpha_bars[t], schedule.alpha_bars[t - 1]
        bt = (1 - abp) / (1 - ab) * schedule.betas[t]
        return bt.clone(), bt

    def sigma_twice(schedule, t, t_prev):
        s2 = md.ddim_sigma(schedule, t, t_prev, 1.0) ** 2
        return s2, s2.clone()

    for fn in (read_twice, read):
        v = grading.run_check("eta_one_variances", fn)
        assert not v.passed and "has no beta_tildes" in v.message, v.message
    for fn in (written_twice, sigma_twice):
        v = grading.run_check("eta_one_variances", fn)
        assert not v.passed and "stride 10" in v.message, v.message


def test_the_check_schedules_are_the_courses_without_beta_tildes():
    for case in grading.CHECKS["eta_one_variances"].cases():
        s = case.inputs["schedule"]
        assert isinstance(s, md.Schedule)
        with pytest.raises(AttributeError, match="write tilde-beta_t out"):
            s.beta_tildes
        md.ddim_sigma(s, case.inputs["t"], case.inputs["t_prev"], 1.0)      # the package's sigma works on it


def test_the_stated_dtype_convention_is_the_checks():
    """The intro: ddim_step returns x_t's dtype (float32 cases are checked); an answer left in float64 fails on dtype."""
    def step_in_float64(x_t, eps, t, t_prev, schedule, eta, noise):
        ab, abp = schedule.alpha_bars[t][:, None], schedule.alpha_bars[t_prev][:, None]
        s = md.ddim_sigma(schedule, t, t_prev, eta)[:, None]
        x0 = (x_t - (1 - ab).sqrt() * eps) / ab.sqrt()
        return abp.sqrt() * x0 + (1 - abp - s**2).sqrt() * eps + s * noise

    v = grading.run_check("ddim_step", step_in_float64)
    assert not v.passed and "expected dtype torch.float32, got torch.float64" in v.message
