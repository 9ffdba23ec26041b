"""Exercise 05 (subsequences and encoding): the points of its questions, and the new derivation `exact_latent`
against independent oracles: the package's Gaussian flow map (eigenvectors, DDIM's variables), a numerical
solution of DDIM's ODE (scipy's DOP853), and the prompt's claim that the encoder converges to it as S grows.  The
generic properties (the reference passes, every listed mistake is rejected with its hint, a stub is "not implemented
yet", the hint ladder) are tested for every question in tests/test_grading.py."""

from pathlib import Path

import numpy as np
import pytest
import torch

import minddim as md
from minddim import grading

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def schedule():
    return md.Schedule.linear()


@pytest.fixture(scope="module")
def data():
    mean = torch.tensor([0.5, -1.0], dtype=torch.float64)
    var = torch.tensor([0.3, 2.0], dtype=torch.float64)
    x0 = mean + var.sqrt() * torch.randn(7, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    return mean, var, x0


def test_the_questions_and_their_points():
    assert grading.questions(ROOT / "solutions" / "05_subsequences_and_encoding.py") == [
        ("uniform_timesteps", 1), ("slerp", 1), ("encode", 2), ("exact_latent", 3)]


@pytest.mark.parametrize("t", [1, 10, 100, 500, 1000])
def test_the_exact_latent_is_the_gaussian_flow_map_from_sigma_0(t, schedule, data):
    mean, var, x0 = data
    got = grading.CHECKS["exact_latent"].reference(x0, torch.full((7,), t), mean, var, schedule)
    want = md.gaussian_flow_map(x0, 0.0, md.ode_sigma(schedule, t).item(), mean, torch.diag(var))
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_the_exact_latent_is_the_numerical_solution_of_ddim_ode(schedule, data):
    """Integrate eq. 14 with the exact model upwards, from sigma = 0 to sigma_500, with scipy (DOP853)."""
    from scipy.integrate import solve_ivp

    mean, var, x0 = data
    gauss = md.GaussianDenoiser(mean, torch.diag(var), schedule)
    s_end = md.ode_sigma(schedule, 500).item()

    def slope(sigma, xbar):            # d x-bar / d sigma = E[eps | x] at x = x-bar / sqrt(sigma^2 + 1)
        xb = torch.as_tensor(xbar).reshape(x0.shape)
        ab = 1 / (1 + sigma ** 2)
        x = xb * ab ** 0.5
        eps = (1 - ab) ** 0.5 * (x - ab ** 0.5 * mean) / (ab * var + 1 - ab)
        return eps.reshape(-1).numpy()

    sol = solve_ivp(slope, (0.0, s_end), x0.reshape(-1).numpy(), method="DOP853", rtol=1e-11, atol=1e-12)
    numerical = torch.as_tensor(sol.y[:, -1]).reshape(x0.shape) / (1 + s_end ** 2) ** 0.5
    got = grading.CHECKS["exact_latent"].reference(x0, torch.full((7,), 500), mean, var, schedule)
    torch.testing.assert_close(got, numerical, rtol=1e-8, atol=1e-8)
    # and the closed form of the exact model used in slope() is the package's
    t = torch.full((7,), 500)
    x_t = got
    ab = schedule.alpha_bars[500]
    torch.testing.assert_close(gauss(x_t, t), (1 - ab).sqrt() * (x_t - ab.sqrt() * mean) / (ab * var + 1 - ab))


def test_the_encoder_converges_to_the_exact_latent_like_one_over_S(schedule, data):
    """The prompt's claim: encode with the exact model approaches exact_latent at t = tau_S as S grows, first order."""
    mean, var, x0 = data
    gauss = md.GaussianDenoiser(mean, torch.diag(var), schedule)
    Ss = (10, 20, 50, 100, 200)
    errors = []
    for S in Ss:
        tau = md.timesteps(schedule.T, S)
        exact = grading.CHECKS["exact_latent"].reference(x0, torch.full((7,), int(tau[-1])), mean, var, schedule)
        errors.append((md.encode(gauss, x0, schedule, tau) - exact).pow(2).sum(1).mean().sqrt().item())
    assert all(a > b for a, b in zip(errors, errors[1:]))
    assert -1.1 < np.polyfit(np.log(Ss), np.log(errors), 1)[0] < -0.9


def test_a_correct_exact_latent_written_another_way_passes():
    """Through DDIM's x-bar and sigma (the flow map's own variables), in the input's dtype."""
    def exact_latent(x0, t, mean, var, schedule):
        ab = schedule.alpha_bars[t].to(x0.dtype)[:, None]
        sigma2 = (1 - ab) / ab
        x_bar = mean + (x0 - mean) * ((var + sigma2) / var).sqrt()
        return x_bar * ab.sqrt()
    assert grading.run_check("exact_latent", exact_latent).passed


def test_calling_the_package_flow_map_gets_no_points():
    def exact_latent(x0, t, mean, var, schedule):
        return torch.stack([md.gaussian_flow_map(x0[i:i + 1], 0.0, md.ode_sigma(schedule, int(t[i])).item(), mean,
                                                 torch.diag(var))[0] for i in range(len(t))])
    verdict = grading.run_check("exact_latent", exact_latent)
    assert not verdict.passed and "gaussian_flow_map" in verdict.message
