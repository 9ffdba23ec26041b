"""DDIM Theorem 1's weight gamma for strided steps tau_i -> tau_{i-1} (DDIM sec. 4.2, app. C.1): md.ddim_gamma
against the graded key's unit-stride weight, DDPM eq. 12's closed form at eta = 1, a direct Gaussian KL with the
exact model, and a Monte Carlo run of the strided forward process q_{sigma,tau} on Gaussian data."""

import math

import pytest
import torch

import minddim as md
from minddim.grading.keys.ex04_ddim_step import gamma_weight as key_gamma_weight


@pytest.mark.parametrize("eta", [0.2, 0.5, 1.0])
def test_unit_strides_agree_with_the_graded_keys_gamma_weight(schedule, eta):
    for s in (schedule, md.Schedule.linear(T=10), md.Schedule.cosine(T=100)):
        t = torch.arange(2, s.T + 1)
        sigma = md.ddim_sigma(s, t, t - 1, eta)
        torch.testing.assert_close(md.ddim_gamma(s, t, t - 1, sigma), key_gamma_weight(t, s, sigma), rtol=1e-10, atol=0)


def test_eta_one_on_a_strided_step_is_ddpm_eq_12_for_the_respaced_beta(schedule):
    """At eta = 1, sigma^2 is the posterior variance of the Markov chain with beta' = 1 - ab_t / ab_prev; the weight
    is DDPM eq. 12's beta'^2 / (2 sigma^2 alpha' (1 - ab_t))."""
    tau = torch.tensor([1, 3, 17, 60, 150, 333, 520, 777, 900, 1000])
    t, tp = tau[1:], tau[:-1]
    sigma = md.ddim_sigma(schedule, t, tp, 1.0)
    ab, ab_prev = schedule.alpha_bars[t], schedule.alpha_bars[tp]
    beta = 1 - ab / ab_prev
    ddpm = beta**2 / (2 * sigma**2 * (1 - beta) * (1 - ab))
    torch.testing.assert_close(md.ddim_gamma(schedule, t, tp, sigma), ddpm, rtol=1e-10, atol=0)


@pytest.mark.parametrize("t,t_prev,eta", [(600, 350, 0.4), (1000, 900, 1.0), (50, 2, 0.7), (300, 299, 0.1)])
def test_gamma_times_eps_error_is_the_kl_of_the_two_gaussians_with_the_exact_model(schedule, gaussian, gen, t, t_prev, eta):
    """KL(q_sigma(x_{t_prev} | x_t, x_0) || p_theta(x_{t_prev} | x_t)), computed with normal_kl from the two means
    (eq. 7 with x_0, and with f_theta(x_t) of the exact model scaled by 0.9), equals gamma ||eps - eps_theta||^2
    sample by sample."""
    x0 = gaussian.sample_data(500, gen, dtype=torch.float64)
    eps = torch.randn(x0.shape, generator=gen, dtype=torch.float64)
    x_t = md.q_sample(x0, t, schedule, eps)
    eps_hat = 0.9 * gaussian(x_t, t)
    sigma = md.ddim_sigma(schedule, t, t_prev, eta)
    q_mean, var = md.q_sigma_posterior(x0, x_t, t, t_prev, sigma, schedule)
    p_mean, _ = md.q_sigma_posterior(md.predict_x0(x_t, eps_hat, t, schedule), x_t, t, t_prev, sigma, schedule)
    kl = md.normal_kl(q_mean, var, p_mean, var).sum(1)
    gamma = md.ddim_gamma(schedule, t, t_prev, sigma)
    torch.testing.assert_close(kl, gamma * (eps - eps_hat).pow(2).sum(1), rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("t,sigma", [(1, 0.01), (100, 0.3), (999, 2.0)])
def test_at_t_prev_0_gamma_is_the_gaussian_decoders_weight(schedule, gaussian, gen, t, sigma):
    """-log N(x_0; f_theta(x_t), sigma^2 I) = gamma ||eps - eps_theta||^2 + (d/2) log(2 pi sigma^2)  (eq. 10 at t = 1,
    app. C.1 eq. 57)."""
    x0 = gaussian.sample_data(300, gen, dtype=torch.float64)
    eps = torch.randn(x0.shape, generator=gen, dtype=torch.float64)
    x_t = md.q_sample(x0, t, schedule, eps)
    eps_hat = 0.9 * gaussian(x_t, t)
    f = md.predict_x0(x_t, eps_hat, t, schedule)
    nll = -torch.distributions.Normal(f, sigma).log_prob(x0).sum(1)
    gamma = md.ddim_gamma(schedule, t, 0, sigma)
    torch.testing.assert_close(nll - math.log(2 * math.pi * sigma**2), gamma * (eps - eps_hat).pow(2).sum(1),
                               rtol=1e-8, atol=1e-10)


def test_strided_process_mean_kl_is_gamma_times_the_closed_form_eps_error(schedule, gaussian):
    """Run q_{sigma,tau} (app. C.1) from x_T ~ q(x_T | x_0) down a strided tau; at each tau_i the mean KL to the
    model's step is gamma_i E||eps - 0.9 E[eps | x_t]||^2, where for Gaussian data (d = 2, Sigma_t = ab C + (1-ab) I)
    E||eps - 0.9 m||^2 = tr P + 0.01 (d - tr P), P = I - (1 - ab) Sigma_t^{-1}.  Tolerance: 5 Monte Carlo
    standard errors."""
    g = torch.Generator().manual_seed(37)
    n, eta = 40_000, 0.5
    tau = torch.tensor([1, 3, 17, 60, 150, 333, 520, 777, 900, 1000])
    x0 = gaussian.sample_data(n, g, dtype=torch.float64)
    x = md.q_sample(x0, int(tau[-1]), schedule, generator=g)
    cov = gaussian.cov
    for i in range(len(tau) - 1, 0, -1):
        t, tp = int(tau[i]), int(tau[i - 1])
        sigma = md.ddim_sigma(schedule, t, tp, eta)
        q_mean, var = md.q_sigma_posterior(x0, x, t, tp, sigma, schedule)
        eps_hat = 0.9 * gaussian(x, t)
        p_mean, _ = md.q_sigma_posterior(md.predict_x0(x, eps_hat, t, schedule), x, t, tp, sigma, schedule)
        kl = md.normal_kl(q_mean, var, p_mean, var).sum(1)
        ab = schedule.alpha_bars[t]
        P = torch.eye(2, dtype=torch.float64) - (1 - ab) * torch.linalg.inv(ab * cov + (1 - ab) * torch.eye(2, dtype=torch.float64))
        expected = md.ddim_gamma(schedule, t, tp, sigma) * (P.trace() + 0.01 * (2 - P.trace()))
        assert abs(kl.mean() - expected) < 5 * kl.std() / math.sqrt(n), (t, tp, kl.mean().item(), expected.item())
        x = q_mean + var.sqrt() * torch.randn(x.shape, generator=g, dtype=torch.float64)


def test_gamma_is_positive_and_broadcasts(schedule):
    tau = md.timesteps(schedule.T, 10, "trailing")
    sigma = md.ddim_sigma(schedule, tau[1:], tau[:-1], 0.3)
    gamma = md.ddim_gamma(schedule, tau[1:], tau[:-1], sigma)
    assert gamma.shape == (9,) and gamma.dtype == torch.float64 and (gamma > 0).all()
    assert md.ddim_gamma(schedule, 500, torch.tensor([0, 100, 499]), 0.05).shape == (3,)
    assert md.ddim_gamma(schedule, 500, 0, torch.tensor([0.1, 0.2])).shape == (2,)


def test_bad_input_names_the_argument(schedule):
    with pytest.raises(ValueError, match="sigma"):
        md.ddim_gamma(schedule, 500, 400, 0.0)
    with pytest.raises(ValueError, match="sigma"):
        md.ddim_gamma(schedule, 500, 400, 2.0)           # sigma^2 > 1 - alpha_bar[400]
    with pytest.raises(ValueError, match="sigma"):
        md.ddim_gamma(schedule, 500, 400, float("nan"))
    with pytest.raises(TypeError, match="sigma"):
        md.ddim_gamma(schedule, 500, 400, True)
    with pytest.raises(TypeError, match="sigma"):
        md.ddim_gamma(schedule, 500, 400, "0.1")
    with pytest.raises(ValueError, match="sigma"):
        md.ddim_gamma(schedule, torch.tensor([500, 600]), torch.tensor([400, 500]), torch.tensor([0.1, 0.2, 0.3]))
    with pytest.raises(ValueError, match="t_prev"):
        md.ddim_gamma(schedule, 500, 500, 0.1)
    with pytest.raises(ValueError, match="t "):
        md.ddim_gamma(schedule, 1001, 500, 0.1)
