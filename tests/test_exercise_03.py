"""Exercise 03 (the epsilon loss): the new derivation question, eps_loss_floor, against an independent route.

The floor of L_simple at time t for Gaussian data N(mu, Sigma) is (1/d) sum_i ab lambda_i / (ab lambda_i + 1 - ab)
over Sigma's eigenvalues.  Here it is checked against (a) the Schur complement computed with matrices, no
eigenvalues, (b) a Monte Carlo estimate of L_simple with the exact model md.GaussianDenoiser, within four standard
errors, and (c) the limits the prompt's follow-up cell relies on (near 1 at t = 1, near 0 at t = T).  The generic
properties (the reference passes, every listed mistake is rejected with its hint, a stub is "not implemented yet",
the hint ladder) are tested for every question in tests/test_grading.py."""

import math
from pathlib import Path

import pytest
import torch

import minddim as md
from minddim import grading
from minddim.grading.keys import ex03_epsilon_loss as answers


def test_the_questions_are_registered_with_the_solution_notebooks_points():
    sol = Path(__file__).resolve().parents[1] / "solutions" / "03_epsilon_loss.py"
    assert grading.questions(sol) == [("epsilon_loss", 1), ("training_step", 2), ("p_mean", 1),
                                      ("ancestral_step", 1), ("eps_loss_floor", 3)]


def _random_cov(d, seed):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(d, d, generator=g, dtype=torch.float64)
    return a @ a.T + 0.05 * torch.eye(d, dtype=torch.float64)


@pytest.mark.parametrize("d", [1, 2, 5])
def test_the_floor_is_the_trace_of_the_posterior_covariance_of_eps_over_d(d):
    """Cov(eps | x_t) = I - (1 - ab) (ab Sigma + (1 - ab) I)^{-1} (the Gaussian conditional's Schur complement)."""
    schedule = md.Schedule.linear()
    cov = _random_cov(d, d)
    t = torch.tensor([1, 5, 50, 250, 500, 999, 1000])
    for k, tk in enumerate(t.tolist()):
        ab = schedule.alpha_bars[tk]
        marginal = ab * cov + (1 - ab) * torch.eye(d, dtype=torch.float64)
        post = torch.eye(d, dtype=torch.float64) - (1 - ab) * torch.linalg.inv(marginal)
        got = answers.eps_loss_floor(t, schedule, cov)[k]
        assert math.isclose(float(got), float(torch.trace(post)) / d, rel_tol=1e-9, abs_tol=1e-12)


@pytest.mark.parametrize("t", [1, 30, 150, 400, 800])
def test_the_floor_is_the_exact_models_l_simple_by_monte_carlo(t):
    """The exact model's L_simple on 200,000 draws of a correlated Gaussian with a mean sits within 4 standard errors
    of the closed form, and is independent of the mean."""
    schedule = md.Schedule.linear()
    cov = torch.tensor([[1.0, 0.8], [0.8, 1.0]], dtype=torch.float64)
    exact = md.GaussianDenoiser(torch.tensor([1.5, -2.0], dtype=torch.float64), cov, schedule)
    g = torch.Generator().manual_seed(t)
    n = 200_000
    x0 = exact.sample_data(n, g, dtype=torch.float64)
    noise = torch.randn(x0.shape, generator=g, dtype=torch.float64)
    tt = torch.full((n,), t)
    with torch.no_grad():
        per_sample = ((exact(md.q_sample(x0, tt, schedule, noise), tt) - noise) ** 2).mean(1)
    mc, se = per_sample.mean().item(), per_sample.std().item() / math.sqrt(n)
    closed = answers.eps_loss_floor(torch.tensor([t]), schedule, cov).item()
    assert abs(mc - closed) < 4 * se + 1e-12, (mc, closed, se)


def test_the_floor_falls_from_about_1_at_t_1_to_alpha_bar_T_scale_at_T():
    schedule = md.Schedule.linear()
    cov = torch.tensor([[1.0, 0.8], [0.8, 1.0]], dtype=torch.float64)
    f = answers.eps_loss_floor(torch.arange(1, schedule.T + 1), schedule, cov)
    assert f[0] > 0.999 and f[-1] < 1e-4
    assert bool((f[1:] <= f[:-1]).all())          # ab_t decreases, and ab lam / (ab lam + 1 - ab) increases in ab


def test_the_check_rejects_a_monte_carlo_answer():
    """The prompt says a Monte Carlo estimate will not pass: one with 20,000 draws misses the 1e-6 tolerance."""
    def monte_carlo(t, schedule, cov):
        exact = md.GaussianDenoiser(torch.zeros(cov.shape[0], dtype=torch.float64), cov.double(), schedule)
        g = torch.Generator().manual_seed(0)
        out = []
        for tk in t.tolist():
            x0 = exact.sample_data(20_000, g, dtype=torch.float64)
            out.append(md.epsilon_loss(exact, x0, schedule, t=torch.full((20_000,), tk),
                                       noise=torch.randn(x0.shape, generator=g, dtype=torch.float64)))
        return torch.stack(out)

    v = grading.run_check("eps_loss_floor", monte_carlo)
    label = grading.CHECKS["eps_loss_floor"].cases()[v.cases].label
    assert not v.passed and v.message.startswith(f"on {label}, expected ["), v.message    # values, not a shape or dtype


def test_the_x0_mistakes_hint_states_the_ratio_of_the_two_posterior_variances():
    """The hint of the Cov(x_0 | x_t) mistake: eps's posterior variance is alpha-bar_t / (1 - alpha-bar_t) times
    x_0's (eps = (x_t - sqrt(ab) x_0) / sqrt(1 - ab)), larger than x_0's where alpha-bar_t > 1/2."""
    schedule = md.Schedule.linear()
    cov = _random_cov(3, 7)
    t = torch.tensor([1, 100, 259, 260, 700, 1000])
    x0_mistake = next(f for h, f in grading.CHECKS["eps_loss_floor"].mistakes.items() if "Cov(x_0 | x_t)" in h)
    hint = next(h for h in grading.CHECKS["eps_loss_floor"].mistakes if "Cov(x_0 | x_t)" in h)
    assert "alpha-bar_t / (1 - alpha-bar_t) times x_0's" in hint
    ab = schedule.alpha_bars[t]
    torch.testing.assert_close(answers.eps_loss_floor(t, schedule, cov), ab / (1 - ab) * x0_mistake(t, schedule, cov),
                               rtol=1e-10, atol=1e-14)


def test_the_stated_dtype_convention_is_the_checks():
    """The intro says: epsilon_loss, p_mean and ancestral_step return the dtype of their data; a float32 case is checked
    and an answer left in the schedule's float64 fails on dtype."""
    def p_mean_in_float64(x_t, eps, t, schedule):
        a, ab, beta = schedule.alphas[t][:, None], schedule.alpha_bars[t][:, None], schedule.betas[t][:, None]
        return (x_t - beta / (1 - ab).sqrt() * eps) / a.sqrt()

    v = grading.run_check("p_mean", p_mean_in_float64)
    assert not v.passed and "expected dtype torch.float32, got torch.float64" in v.message
