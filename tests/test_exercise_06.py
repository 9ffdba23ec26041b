"""Exercise 06 (scores and the ODE): the points of its questions; the new derivation `langevin_variance` against a
Monte Carlo run of the package's Langevin step and against the package's stationary covariance; the new measurement
`ode_orders` against the package's Heun sampler and a numerical reference, and the claims its prompt makes (Heun near
-2 to t_mid, Euler near -1, Heun to t = 0 neither).  The generic properties (the reference passes, every listed
mistake is rejected with its hint, a stub is "not implemented yet", the hint ladder) are tested for every question in
tests/test_grading.py."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch

import minddim as md
from minddim import grading
from minddim.grading.keys import ex06_scores_and_ode as key
from minddim.grading.runner import _clone

ROOT = Path(__file__).resolve().parents[1]
SCHEDULE = md.Schedule.linear()
GAUSS = md.GaussianDenoiser(torch.tensor([0.5, -0.5]), torch.tensor([[1.0, 0.6], [0.6, 0.8]]), SCHEDULE)


def test_the_questions_and_their_points():
    assert grading.questions(ROOT / "solutions" / "06_scores_and_ode.py") == [
        ("score_from_eps", 1), ("langevin_step", 1), ("euler_step", 1), ("heun_step", 2), ("langevin_variance", 2),
        ("ode_orders", 3)]


# -- langevin_variance ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("lam, step_size, v0", [(1.0, 0.5, 3.0), (0.2, 0.3, 0.0), (2.0, 1.0, 0.5)])
def test_the_variance_path_matches_a_monte_carlo_run_of_the_package_langevin_step(lam, step_size, v0):
    """200,000 chains of md.langevin_step on N(0, lam); the sample variance at k = 0..20 lies within 4.5 standard
    errors (v sqrt(2 / n)) of the closed form, at every k."""
    n, ref = 200_000, grading.CHECKS["langevin_variance"].reference
    g = torch.Generator().manual_seed(7)
    x = math.sqrt(v0) * torch.randn(n, dtype=torch.float64, generator=g)
    for k in range(21):
        want = ref(lam, step_size, k, v0)
        assert abs(x.var().item() - want) < 4.5 * want * math.sqrt(2 / n) + 1e-12, (k, x.var().item(), want)
        x = md.langevin_step(x, -x / lam, step_size, torch.randn(n, dtype=torch.float64, generator=g))


@pytest.mark.parametrize("lam, step_size", [(1.0, 0.05), (0.2, 0.4), (1.8, 3.0)])
def test_the_variance_ends_at_the_package_stationary_variance_and_starts_at_v0(lam, step_size):
    ref = grading.CHECKS["langevin_variance"].reference
    stationary = md.gaussian_langevin_covariance(torch.tensor([[lam]], dtype=torch.float64), step_size)[0, 0].item()
    assert ref(lam, step_size, 10_000, 1.0) == pytest.approx(stationary, rel=1e-12)
    assert ref(lam, step_size, 0, 0.7) == pytest.approx(0.7, rel=1e-12)
    a = 1 - step_size / (2 * lam)
    assert ref(lam, step_size, 1, 0.7) == pytest.approx(a * a * 0.7 + step_size, rel=1e-12)


# -- ode_orders -----------------------------------------------------------------------------------------------------
def test_the_key_steps_are_the_package_heun_and_euler_steps():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(6, 2, dtype=torch.float64, generator=g)
    t, t_prev = torch.tensor([1000, 800, 500, 100, 20, 2]), torch.tensor([900, 400, 499, 50, 10, 1])
    torch.testing.assert_close(key._heun_as_step(GAUSS, x, t, t_prev, SCHEDULE),
                               md.heun_step(GAUSS, x, t, t_prev, SCHEDULE)[0], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(key._euler_as_step(GAUSS, x, t, t_prev, SCHEDULE),
                               md.euler_step(x, GAUSS(x, t), t, t_prev, SCHEDULE), rtol=1e-12, atol=1e-12)


def test_the_errors_are_those_of_the_package_heun_sampler_against_a_numerical_reference():
    """The key's walk is md.heun on the trailing grid (its states at t_mid and at 0), and its exact solution agrees
    with md.pf_ode_solve; the slopes from the numerical reference lie far inside the check's tolerance (0.01)."""
    x_T = torch.randn(20, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    Ss, t_mid = (10, 20, 50), 100
    errors = key._order_errors(key._heun_as_step, GAUSS, x_T, SCHEDULE, Ss, t_mid)
    sigma_T = md.ode_sigma(SCHEDULE, 1000).item()
    ref_mid = md.pf_ode_solve(GAUSS, x_T, sigma_T, md.ode_sigma(SCHEDULE, t_mid).item(), SCHEDULE)
    ref_0 = md.pf_ode_solve(GAUSS, x_T, sigma_T, 0.0, SCHEDULE)
    rms = lambda a, b: (a - b).pow(2).sum(1).mean().sqrt().item()  # noqa: E731
    numerical = []
    for S, (e_mid, e_0) in zip(Ss, errors):
        traj = md.heun(GAUSS, x_T, SCHEDULE, md.timesteps(1000, S, "trailing"), trajectory=True)
        k = int((traj.times == t_mid).nonzero())
        numerical.append((rms(traj.xs[k], ref_mid), rms(traj.x0, ref_0)))
        assert e_mid == pytest.approx(numerical[-1][0], rel=1e-6) and e_0 == pytest.approx(numerical[-1][1], rel=1e-6)
    slopes = [np.polyfit(np.log(Ss), np.log(np.array(numerical)[:, j]), 1)[0] for j in (0, 1)]
    ours = key._ode_orders(key._heun_as_step, GAUSS, x_T, SCHEDULE, Ss, t_mid)
    assert max(abs(a - b) for a, b in zip(slopes, ours)) < 1e-4


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_prompt_claims_heun_near_minus_two_to_t_mid_euler_near_minus_one_heun_to_0_neither(seed):
    """The prompt's setting: 40 points, t_mid = 100, S = 10, 20, 50, 100, on the prompt's Gaussian model."""
    x_T = torch.randn(40, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    measure = key._ode_orders
    heun_mid, heun_0 = measure(key._heun_as_step, GAUSS, x_T, SCHEDULE, (10, 20, 50, 100), 100)
    euler_mid, euler_0 = measure(key._euler_as_step, GAUSS, x_T, SCHEDULE, (10, 20, 50, 100), 100)
    assert abs(heun_mid + 2) < 0.15
    assert abs(euler_mid + 1) < 0.1 and abs(euler_0 + 1) < 0.1
    assert -1.8 < heun_0 < -1.2


def test_the_prompt_unchecked_experiment_sigma_tau1_squared_steeper_than_one_trapezoid_last_step_order_two():
    """The prompt's follow-up: over S = 10 ... 100 sigma(tau_1)^2 falls faster than 1/S (about S^-1.8), and Heun with
    a trapezoidal last step (eps = 0 at sigma = 0) has slope near -2 to t = 0."""
    Ss = (10, 20, 50, 100)
    sigma2 = [md.ode_sigma(SCHEDULE, 1000 // S).item() ** 2 for S in Ss]
    assert -1.9 < np.polyfit(np.log(Ss), np.log(sigma2), 1)[0] < -1.6
    x_T = torch.randn(40, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    exact_0 = md.gaussian_flow_map(x_T, md.ode_sigma(SCHEDULE, 1000).item(), 0.0, GAUSS.mean, GAUSS.cov)
    errors = []
    for S in Ss:
        tau = md.timesteps(1000, S, "trailing").tolist()[::-1]
        x = x_T
        for t, t_prev in zip(tau[:-1], tau[1:]):
            x = key._heun_as_step(GAUSS, x, torch.full((40,), t), torch.full((40,), t_prev), SCHEDULE)
        ab = SCHEDULE.alpha_bars[tau[-1]].item()
        assert GAUSS.eps_at(x, 1.0).abs().max().item() == 0.0
        eps_1 = GAUSS(x, torch.full((40,), tau[-1]))
        x_bar_0 = x / math.sqrt(ab) - math.sqrt((1 - ab) / ab) * (eps_1 + GAUSS.eps_at(x, 1.0)) / 2
        errors.append((x_bar_0 - exact_0).pow(2).sum(1).mean().sqrt().item())
    assert abs(np.polyfit(np.log(Ss), np.log(errors), 1)[0] + 2) < 0.1


def test_an_answer_that_ignores_the_step_it_is_given_fails():
    """md.heun (forbidden) or any fixed sampler: the Euler case tells them apart."""
    def ode_orders(step, model, x_T, schedule, Ss, t_mid):
        errors = np.array(key._order_errors(key._heun_as_step, model, x_T, schedule, Ss, t_mid))
        return tuple(float(np.polyfit(np.log(Ss), np.log(errors[:, j]), 1)[0]) for j in (0, 1))
    verdict = grading.run_check("ode_orders", ode_orders)
    assert not verdict.passed and "Euler" in verdict.message


def test_the_check_runs_in_well_under_two_seconds():
    import time
    spec = grading.CHECKS["ode_orders"]
    start = time.perf_counter()
    for case in spec.cases():
        spec.reference(**_clone(case.inputs))
    assert time.perf_counter() - start < 2.0      # about 0.6 s on an idle 2-core Xeon; room for a slow or loaded runner
