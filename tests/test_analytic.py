"""The exact models: densities, scores and E[eps | x_t] against independent computations."""

import math

import numpy as np
import pytest
import torch
from scipy import stats

import minddim as md


def test_gaussian_denoiser_is_the_linear_formula(gaussian, schedule, gen):
    m, C = gaussian.mean.numpy(), gaussian.cov.numpy()
    x = torch.randn(5, 2, generator=gen, dtype=torch.float64)
    for t in (1, 10, 500, 1000):
        ab = schedule.alpha_bars[t].item()
        S = ab * C + (1 - ab) * np.eye(2)
        expected = math.sqrt(1 - ab) * np.linalg.solve(S, (x.numpy() - math.sqrt(ab) * m).T).T
        np.testing.assert_allclose(gaussian(x, t).numpy(), expected, rtol=1e-10)
        np.testing.assert_allclose(gaussian.log_prob(x, t).numpy(),
                                   stats.multivariate_normal(math.sqrt(ab) * m, S).logpdf(x.numpy()), rtol=1e-10)
    assert gaussian.entropy() == pytest.approx(stats.multivariate_normal(m, C).entropy(), rel=1e-12)


@pytest.mark.parametrize("t", [0, 30, 300])
def test_mixture_density_integrates_to_one(mixture, t):
    h = 0.02
    g = torch.arange(-4, 4, h, dtype=torch.float64) + h / 2
    xx, yy = torch.meshgrid(g, g, indexing="ij")
    pts = torch.stack([xx.reshape(-1), yy.reshape(-1)], 1)
    mass = mixture.log_prob(pts, t).exp().sum().item() * h * h
    assert mass == pytest.approx(1.0, abs=2e-3)


def test_score_is_the_gradient_of_the_log_density(mixture, gen):
    x = (2 * torch.randn(20, 2, generator=gen, dtype=torch.float64)).requires_grad_()
    for t in (0, 5, 100, 800):
        grad, = torch.autograd.grad(mixture.log_prob(x, t).sum(), x)
        assert torch.allclose(mixture.score(x.detach(), t), grad, rtol=1e-8, atol=1e-10)
        if t:
            ab = mixture.schedule.alpha_bars[t]
            assert torch.allclose(mixture(x.detach(), t), -(1 - ab).sqrt() * grad, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("t", [40, 200, 700])
def test_mixture_posterior_mean_of_eps_matches_monte_carlo(mixture, schedule, t):
    """E[eps | x_t = x] by self-normalized importance sampling over N = 400k draws of x_0:
    weights q(x | x_0^i), values (x - sqrt(ab) x_0^i)/sqrt(1 - ab). Tolerance from the effective sample size."""
    g = torch.Generator().manual_seed(t)
    ab = schedule.alpha_bars[t].item()
    x0 = mixture.sample_data(400_000, g, dtype=torch.float64)
    x = md.q_sample(mixture.sample_data(6, g, dtype=torch.float64), t, schedule, generator=g)
    exact = mixture(x, t)
    for i in range(len(x)):
        eps_i = (x[i] - math.sqrt(ab) * x0) / math.sqrt(1 - ab)
        logw = -0.5 * (eps_i**2).sum(1)
        w = torch.softmax(logw, 0)
        est = (w[:, None] * eps_i).sum(0)
        ess = 1 / (w**2).sum()
        sd = ((w[:, None] * (eps_i - est) ** 2).sum(0)).sqrt()
        assert ess > 500
        assert ((est - exact[i]).abs() < 5 * sd / ess.sqrt() + 1e-3).all(), (t, i, est, exact[i], ess)


def test_exact_models_reject_bad_parameters(schedule):
    with pytest.raises(ValueError, match="weights"):
        md.GaussianMixtureDenoiser([0.5, 0.6], torch.zeros(2, 2), torch.eye(2).expand(2, 2, 2), schedule)
    with pytest.raises(ValueError, match="covs"):
        md.GaussianMixtureDenoiser([1.0], torch.zeros(1, 2), -torch.eye(2)[None], schedule)
    with pytest.raises(ValueError, match="means"):
        md.GaussianMixtureDenoiser([1.0], torch.zeros(2), torch.eye(2)[None], schedule)
    with pytest.raises(ValueError, match="mean"):
        md.GaussianDenoiser(torch.zeros(2, 2), torch.eye(2), schedule)
    with pytest.raises(ValueError, match="x_t"):
        md.GaussianDenoiser(torch.zeros(2), torch.eye(2), schedule)(torch.zeros(4, 3), 5)
