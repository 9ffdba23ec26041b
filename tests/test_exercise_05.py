"""Exercise 05 (subsequences and encoding): the points of its questions; `exact_latent` against independent oracles:
the package's Gaussian flow map (eigenvectors, DDIM's variables) and a numerical solution of DDIM's ODE (scipy's
DOP853); the measurement `encoder_convergence` against the package's encoder and flow map, and what its prompt asks
(the encoder is first order; which S brings it within 0.05 and 0.01).  The
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
        ("uniform_timesteps", 1), ("slerp", 1), ("encode", 2), ("exact_latent", 1), ("encoder_convergence", 2)]


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


# -- encoder_convergence --------------------------------------------------------------------------------------------
def _package_errors(x0, mean, var, schedule, Ss):
    """The same measurement from the package alone: md.encode, and md.gaussian_flow_map in DDIM's variables."""
    gauss = md.GaussianDenoiser(mean, torch.diag(var), schedule)
    errors = []
    for S in Ss:
        tau = md.timesteps(schedule.T, S)
        t_end = int(tau[-1])
        exact = md.gaussian_flow_map(x0, 0.0, md.ode_sigma(schedule, t_end).item(), mean, torch.diag(var))
        errors.append((md.encode(gauss, x0, schedule, tau) - exact).pow(2).sum(1).mean().sqrt().item())
    return errors


def test_the_measurement_is_the_package_encoder_against_the_package_flow_map(schedule):
    spec = grading.CHECKS["encoder_convergence"]
    for case in spec.cases()[::2]:                     # the two cases that pass DDIM's encoder
        inputs = case.inputs
        errors, slope = spec.reference(**inputs)
        want = _package_errors(inputs["x0"], inputs["mean"], inputs["var"], schedule, inputs["Ss"])
        np.testing.assert_allclose(errors, want, rtol=1e-9)
        assert slope == pytest.approx(np.polyfit(np.log(inputs["Ss"]), np.log(want), 1)[0], abs=1e-9)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_prompt_setting_first_order_within_005_at_s_100_and_001_near_s_330(seed, schedule):
    """The prompt's setting (40 points, S = 10 ... 200): slope near -1; the first S within 0.05 is 100; 0.01 takes
    between 250 and 450 steps."""
    mean = torch.tensor([0.5, -1.0], dtype=torch.float64)
    var = torch.tensor([0.3, 2.0], dtype=torch.float64)
    x0 = mean + var.sqrt() * torch.randn(40, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    Ss = (10, 20, 50, 100, 200)
    errors, slope = grading.CHECKS["encoder_convergence"].reference(md.encode, x0, mean, var, schedule, Ss)
    assert -1.05 < slope < -0.9
    assert errors[2] > 0.05 > errors[3]
    more = _package_errors(x0, mean, var, schedule, (250, 450))
    assert more[0] > 0.01 > more[1]


def test_an_answer_that_ignores_the_encoder_it_is_given_fails():
    """It runs DDIM's encoder whatever it is given: the case with another encoder names the mistake."""
    from minddim.grading.keys import ex05_subsequences_and_encoding as key

    def encoder_convergence(encode, x0, mean, var, schedule, Ss):
        gauss, errors = md.GaussianDenoiser(mean, torch.diag(var), schedule), []
        for S in Ss:
            tau = md.timesteps(schedule.T, S)
            exact = key._exact_latent(x0, torch.full((len(x0),), int(tau[-1])), mean, var, schedule)
            errors.append((key._encode_with()(gauss, x0, schedule, tau) - exact).pow(2).sum(1).mean().sqrt().item())
        return tuple(errors), float(np.polyfit(np.log(Ss), np.log(errors), 1)[0])
    verdict = grading.run_check("encoder_convergence", encoder_convergence)
    assert not verdict.passed and "use the encode you are given" in verdict.message


def test_the_measurement_check_runs_in_well_under_two_seconds():
    import time
    from minddim.grading.runner import _clone
    spec = grading.CHECKS["encoder_convergence"]
    spec.reference(**_clone(spec.cases()[0].inputs))
    start = time.perf_counter()
    for case in spec.cases():
        spec.reference(**_clone(case.inputs))
    assert time.perf_counter() - start < 2.0
