"""The variational bound: its pieces against closed forms, and, for Gaussian data with the exact model,
the whole bound against its closed-form expectation and the true negative log-likelihood."""

import math

import numpy as np
import pytest
import torch
from scipy import integrate, stats

import minddim as md
from minddim.bound import reverse_variance


@pytest.mark.parametrize("m1,v1,m2,v2", [(0.0, 1.0, 0.0, 1.0), (0.3, 0.5, -1.0, 2.0), (1.0, 0.01, 1.2, 0.02)])
def test_normal_kl_against_numerical_integration(m1, v1, m2, v2):
    p, q = stats.norm(m1, math.sqrt(v1)), stats.norm(m2, math.sqrt(v2))
    lo, hi = m1 - 12 * math.sqrt(v1), m1 + 12 * math.sqrt(v1)
    kl, _ = integrate.quad(lambda x: p.pdf(x) * (p.logpdf(x) - q.logpdf(x)), lo, hi, limit=200)
    args = (torch.tensor(v, dtype=torch.float64) for v in (m1, v1, m2, v2))
    assert md.normal_kl(*args).item() == pytest.approx(kl, abs=1e-8)


@pytest.mark.parametrize("mean,var", [(0.0, 0.01), (0.37, 1e-4), (-0.99, 0.5), (1.0, 1e-6), (3.0, 2.0)])
def test_discretized_likelihood_sums_to_one_over_the_256_bins(mean, var):
    bins = torch.arange(256, dtype=torch.float64) / 127.5 - 1
    logp = md.discretized_gaussian_log_likelihood(bins, torch.tensor(mean, dtype=torch.float64), var)
    assert logp.exp().sum().item() == pytest.approx(1.0, abs=1e-9)
    # an interior bin carries the Gaussian mass of [x - 1/255, x + 1/255]
    k = 100
    sd = math.sqrt(var)
    mass = stats.norm.cdf(bins[k] + 1 / 255, mean, sd) - stats.norm.cdf(bins[k] - 1 / 255, mean, sd)
    if mass > 1e-10:
        assert logp[k].exp().item() == pytest.approx(mass, rel=1e-6)


def test_prior_term_is_tiny_for_the_linear_schedule(schedule, gen):
    """DDPM sec. 4: with the linear schedule L_T is about 1e-5 bits/dim (here: closed form, checked)."""
    x0 = torch.rand(8, 3, 32, 32, generator=gen, dtype=torch.float64) * 2 - 1
    ab = schedule.alpha_bars[-1].item()
    expected = 0.5 * (-math.log(1 - ab) + (1 - ab) + ab * x0**2 - 1)
    got = md.prior_term(x0, schedule)
    assert torch.allclose(got, expected.reshape(8, -1).sum(1), rtol=1e-9)
    bpd = md.bits_per_dim(got, x0)
    assert (bpd > 1e-6).all() and (bpd < 1e-4).all()


def _expected_bound(gaussian, schedule, variance):
    """E_x0[L] for x0 ~ N(m, C) and the exact model, in closed form (independent numpy).
    mu_theta - tilde-mu = c_t (x0_hat - x0), c_t the posterior coefficient of x0, and
    E||x0 - E[x0|x_t]||^2 = tr(C - ab C Sigma_t^{-1} C)."""
    m, C = gaussian.mean.numpy(), gaussian.cov.numpy()
    D = len(m)
    b = np.concatenate([[0.0], np.linspace(1e-4, 0.02, 1000)])
    ab = np.cumprod(1 - b)
    bt = np.concatenate([[0.0], (1 - ab[:-1]) / (1 - ab[1:]) * b[1:]])
    sig2 = b.copy() if variance == "beta" else np.concatenate([[0.0, bt[2]], bt[2:]])

    def post_err(t):
        S = ab[t] * C + (1 - ab[t]) * np.eye(D)
        return np.trace(C - ab[t] * C @ np.linalg.solve(S, C))

    total = 0.5 * D * math.log(2 * math.pi * sig2[1]) + post_err(1) / (2 * sig2[1])            # L_0
    for t in range(2, 1001):
        c = math.sqrt(ab[t - 1]) * b[t] / (1 - ab[t])
        total += 0.5 * D * (math.log(sig2[t] / bt[t]) + bt[t] / sig2[t] - 1) + c * c * post_err(t) / (2 * sig2[t])
    ex2 = np.diag(C) + m**2
    total += (0.5 * (-math.log(1 - ab[-1]) + (1 - ab[-1]) + ab[-1] * ex2 - 1)).sum()               # L_T
    return total


@pytest.mark.parametrize("variance", ["beta", "beta_tilde"])
def test_bound_with_the_exact_model_is_above_the_true_nll_and_matches_its_closed_form(gaussian, schedule, variance):
    H = gaussian.entropy()  # the true NLL E[-log q(x0)] of Gaussian data, in closed form
    expected = _expected_bound(gaussian, schedule, variance)
    assert expected >= H
    if variance == "beta":
        # for unit-scale data sigma^2 = beta is nearly the true reverse variance: the bound is tight
        assert expected - H < 0.02 * H
    g = torch.Generator().manual_seed(11)
    x0 = gaussian.sample_data(4000, g, dtype=torch.float64)
    L = md.vlb(gaussian, x0, schedule, decoder="gaussian", variance=variance, generator=g)
    se = L.std().item() / math.sqrt(len(L))
    assert abs(L.mean().item() - expected) < 5 * se, (L.mean().item(), expected, se)


def test_vlb_terms_layout_and_bits_per_dim(gaussian, schedule, gen):
    x0 = gaussian.sample_data(64, gen, dtype=torch.float64)
    terms = md.vlb_terms(gaussian, x0, schedule, decoder="gaussian", generator=gen)
    assert terms.shape == (64, 1001)
    assert torch.allclose(terms[:, -1], md.prior_term(x0, schedule))
    assert (terms[:, 1:-1] >= 0).all(), "KL terms are non-negative"
    assert md.bits_per_dim(terms.sum(1), x0).mean().item() == pytest.approx(terms.sum(1).mean().item() / (2 * math.log(2)))


def test_discretized_bound_on_8bit_data_with_the_exact_model(schedule, gen):
    """On 8-bit data, the discretized bound of the exact model of a (nearly) matching Gaussian is at least the
    entropy of the discrete data and close to the differential entropy minus log of the bin width."""
    cov = torch.tensor([[0.09, 0.03], [0.03, 0.04]], dtype=torch.float64)
    model = md.GaussianDenoiser(torch.zeros(2), cov, schedule)
    x0 = (model.sample_data(3000, gen, dtype=torch.float64).clamp(-1, 1) * 127.5 + 127.5).round() / 127.5 - 1
    L = md.vlb(model, x0, schedule, decoder="discretized", variance="beta", generator=gen)
    continuous_nll = model.entropy() - 2 * math.log(2 / 255)  # each of the 2 dims in bins of width 2/255
    se = L.std().item() / math.sqrt(len(L))
    assert L.mean().item() > continuous_nll - 0.05 - 5 * se
    assert L.mean().item() < continuous_nll + 0.1


def test_reverse_variance_choices(schedule):
    x = torch.zeros(1)
    assert reverse_variance(schedule, 5, x, "beta").item() == pytest.approx(schedule.betas[5].item(), rel=1e-6)
    assert reverse_variance(schedule, 5, x, "beta_tilde").item() == pytest.approx(schedule.beta_tildes[5].item(), rel=1e-6)
    assert reverse_variance(schedule, 1, x, "beta_tilde").item() > 0
    with pytest.raises(ValueError, match="variance"):
        reverse_variance(schedule, 5, x, "learned")
