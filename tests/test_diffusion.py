"""The forward process and its posteriors against closed forms, Bayes' rule and Monte Carlo."""

import math

import numpy as np
import pytest
import torch
from scipy import stats

import minddim as md


def test_q_sample_is_the_closed_form(schedule, gen):
    x0 = torch.randn(5, 3, generator=gen, dtype=torch.float64)
    noise = torch.randn(5, 3, generator=gen, dtype=torch.float64)
    t = torch.tensor([1, 10, 100, 500, 1000])
    ab = schedule.alpha_bars[t][:, None]
    assert torch.allclose(md.q_sample(x0, t, schedule, noise), ab.sqrt() * x0 + (1 - ab).sqrt() * noise)
    assert torch.equal(md.q_sample(x0, 0, schedule, noise), x0)
    x0_back = md.predict_x0(md.q_sample(x0, t, schedule, noise), noise, t, schedule)
    assert torch.allclose(x0_back, x0, atol=1e-9)
    assert torch.allclose(md.predict_eps(md.q_sample(x0, t, schedule, noise), x0, t, schedule), noise, atol=1e-9)


def test_iterating_q_step_gives_the_q_sample_marginal(schedule, gen):
    """DDPM eq. 2 applied t times has the law of eq. 4: N(sqrt(ab_t) x0, (1 - ab_t) I).
    Monte Carlo with n = 100k chains per starting point; tolerances are 5 standard errors."""
    n = 100_000
    x0 = torch.tensor([-1.5, 0.0, 0.7, 2.0], dtype=torch.float64).repeat(n // 4)
    x = x0.clone()
    checks = {1, 10, 100, 300, 1000}
    for t in range(1, schedule.T + 1):
        x = md.q_step(x, t, schedule, generator=gen)
        if t in checks:
            ab = schedule.alpha_bars[t].item()
            z = (x - math.sqrt(ab) * x0) / math.sqrt(1 - ab)  # should be N(0, 1)
            assert abs(z.mean().item()) < 5 / math.sqrt(n), t
            assert abs(z.var().item() - 1) < 5 * math.sqrt(2 / n), t
            assert stats.kstest(z[:20000].numpy(), "norm").pvalue > 1e-4, t


@pytest.mark.parametrize("t", [2, 10, 300, 1000])
def test_q_posterior_is_bayes_rule(schedule, t):
    """q(x_{t-1} | x_t, x_0) ∝ q(x_t | x_{t-1}) q(x_{t-1} | x_0), computed by quadrature on a grid."""
    beta, ab_prev = schedule.betas[t].item(), schedule.alpha_bars[t - 1].item()
    ab = schedule.alpha_bars[t].item()
    for x0_v, z in [(0.8, -0.3), (-1.2, 1.7)]:
        xt_v = math.sqrt(ab) * x0_v + math.sqrt(1 - ab) * z  # a typical x_t for this x_0
        sd_prior = math.sqrt(1 - ab_prev)
        grid = np.linspace(math.sqrt(ab_prev) * x0_v - 10 * sd_prior, math.sqrt(ab_prev) * x0_v + 10 * sd_prior, 400_001)
        log_w = (stats.norm.logpdf(xt_v, math.sqrt(1 - beta) * grid, math.sqrt(beta))
                 + stats.norm.logpdf(grid, math.sqrt(ab_prev) * x0_v, sd_prior))
        w = np.exp(log_w - log_w.max())
        w /= w.sum()
        mean_q = (w * grid).sum()
        var_q = (w * (grid - mean_q) ** 2).sum()
        mean, var = md.q_posterior(torch.tensor([x0_v], dtype=torch.float64), torch.tensor([xt_v], dtype=torch.float64),
                                   t, schedule)
        assert mean.item() == pytest.approx(mean_q, rel=1e-6, abs=1e-9)
        assert var.item() == pytest.approx(var_q, rel=1e-4)
        assert var.item() == pytest.approx(schedule.beta_tildes[t].item(), rel=1e-12)


def test_q_posterior_at_t1_is_a_point_mass_on_x0(schedule):
    x0, xt = torch.tensor([0.3]), torch.tensor([0.9])
    mean, var = md.q_posterior(x0, xt, 1, schedule)
    assert mean.item() == pytest.approx(0.3) and var.item() == 0


@pytest.mark.parametrize("eta", [0.0, 0.5, 1.0])
def test_ddim_lemma1_same_marginals(schedule, eta, gen):
    """DDIM Lemma 1: x_T ~ q(x_T|x_0), then x_{t-1} ~ q_sigma(x_{t-1}|x_t, x_0), has q(x_t|x_0) = N(sqrt(ab_t) x_0,
    (1 - ab_t) I) at every t, whatever sigma. Checked at all 1000 steps with n = 40k chains: the standardized
    mean stays within 5 SE and the variance within 5 SE of 1 at every t."""
    n = 40_000
    x0 = torch.tensor([-1.0, 0.5, 2.0, 0.0], dtype=torch.float64).repeat(n // 4)
    x = md.q_sample(x0, schedule.T, schedule, generator=gen)
    worst_mean = worst_var = 0.0
    for t in range(schedule.T, 1, -1):
        sigma = md.ddim_sigma(schedule, t, t - 1, eta)
        mean, var = md.q_sigma_posterior(x0, x, t, t - 1, sigma, schedule)
        x = mean + var.sqrt() * torch.randn(n, generator=gen, dtype=torch.float64)
        ab = schedule.alpha_bars[t - 1].item()
        z = (x - math.sqrt(ab) * x0) / math.sqrt(1 - ab)
        worst_mean = max(worst_mean, abs(z.mean().item()))
        worst_var = max(worst_var, abs(z.var().item() - 1))
    assert worst_mean < 5 / math.sqrt(n)
    assert worst_var < 5 * math.sqrt(2 / n)


def test_ddim_lemma1_on_a_subsequence(schedule, gen):
    """The same holds on a subsequence tau (DDIM appendix C.1): jumping tau_i -> tau_{i-1} keeps the marginals."""
    n = 100_000
    tau = md.timesteps(schedule.T, 20, "quadratic").tolist()
    x0 = torch.full((n,), 1.3, dtype=torch.float64)
    x = md.q_sample(x0, tau[-1], schedule, generator=gen)
    for t, t_prev in zip(tau[::-1][:-1], tau[::-1][1:]):
        sigma = md.ddim_sigma(schedule, t, t_prev, 0.7)
        mean, var = md.q_sigma_posterior(x0, x, t, t_prev, sigma, schedule)
        x = mean + var.sqrt() * torch.randn(n, generator=gen, dtype=torch.float64)
        ab = schedule.alpha_bars[t_prev].item()
        assert x.mean().item() == pytest.approx(math.sqrt(ab) * 1.3, abs=5 * math.sqrt((1 - ab) / n))
        assert x.var().item() == pytest.approx(1 - ab, rel=5 * math.sqrt(2 / n))


def test_q_sigma_posterior_with_beta_tilde_is_ddpm_posterior(schedule, gen):
    x0 = torch.randn(6, 2, generator=gen, dtype=torch.float64)
    xt = torch.randn(6, 2, generator=gen, dtype=torch.float64)
    t = torch.tensor([2, 5, 50, 200, 700, 1000])
    sigma = schedule.beta_tildes[t].sqrt()[:, None]
    m1, v1 = md.q_sigma_posterior(x0, xt, t, t - 1, sigma, schedule)
    m2, v2 = md.q_posterior(x0, xt, t, schedule)
    assert torch.allclose(m1, m2, atol=1e-12) and torch.allclose(v1, v2.expand_as(v1), atol=1e-15)
