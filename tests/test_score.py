"""The score view (minddim/score.py, sampling.heun): closed forms for Gaussian data, the exact mixture
model, Monte Carlo checks of Langevin dynamics with stated tolerances, the ODE's reference solution
against its closed-form flow map, measured orders of DDIM (Euler) and Heun, and bad input."""

import math

import numpy as np
import pytest
import torch

import minddim as md
from minddim.analytic import GaussianDenoiser, GaussianMixtureDenoiser

S_LIN = md.Schedule.linear()
MEAN = torch.tensor([0.5, -1.0], dtype=torch.float64)
COV = torch.tensor([[1.0, 0.6], [0.6, 0.5]], dtype=torch.float64)


def gauss():
    return GaussianDenoiser(MEAN, COV, S_LIN)


def mixture():
    return GaussianMixtureDenoiser(*md.toy_mixture("eight_gaussians"), S_LIN)


def randn(*shape, seed=0):
    return torch.randn(*shape, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))


# -- score <-> eps, Tweedie ------------------------------------------------------------------------------
@pytest.mark.parametrize("t", [1, 37, 500, 1000])
def test_the_gaussian_score_from_eps_is_the_closed_form_and_the_gradient_of_the_log_density(t):
    x = randn(64, 2)
    ab = S_LIN.alpha_bars[t]
    sigma_t = ab * COV + (1 - ab) * torch.eye(2, dtype=torch.float64)
    closed = -(x - ab.sqrt() * MEAN) @ torch.linalg.inv(sigma_t)
    score = md.score_from_eps(gauss()(x, torch.full((64,), t)), torch.full((64,), t), S_LIN)
    torch.testing.assert_close(score, closed, rtol=1e-10, atol=1e-10)
    xg = x.clone().requires_grad_(True)
    grad, = torch.autograd.grad(gauss().log_prob(xg, t).sum(), xg)   # independent: autograd of log q_t
    torch.testing.assert_close(score, grad, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(md.eps_from_score(score, t, S_LIN), gauss()(x, t), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("t", [1, 250, 1000])
def test_tweedie_is_the_gaussian_posterior_mean_and_predict_x0(t):
    x = randn(32, 2, seed=1)
    ab = S_LIN.alpha_bars[t]
    sigma_t = ab * COV + (1 - ab) * torch.eye(2, dtype=torch.float64)
    # E[x_0 | x_t] for jointly Gaussian (x_0, x_t): m + C sqrt(ab) Sigma_t^{-1} (x_t - sqrt(ab) m)
    closed = MEAN + (x - ab.sqrt() * MEAN) @ torch.linalg.inv(sigma_t) @ (ab.sqrt() * COV)
    score = gauss().score(x, t)
    torch.testing.assert_close(md.tweedie(x, score, t, S_LIN), closed, rtol=1e-9, atol=1e-9)
    eps = gauss()(x, t)
    torch.testing.assert_close(md.tweedie(x, md.score_from_eps(eps, t, S_LIN), t, S_LIN),
                               md.predict_x0(x, eps, t, S_LIN), rtol=1e-12, atol=1e-12)


def test_the_mixture_score_from_its_eps_equals_its_exact_score_and_eps_at_matches_the_schedule():
    model, x = mixture(), randn(200, 2, seed=2) * 3
    t = torch.randint(1, 1001, (200,), generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(md.score_from_eps(model(x, t), t, S_LIN), model.score(x, t), rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(md.score_model(model, S_LIN)(x, t), model.score(x, t), rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(model.eps_at(x, S_LIN.alpha_bars[t]), model(x, t), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(model.eps_at(x[:5], float(S_LIN.alpha_bars[40])), model(x[:5], 40))


# -- denoising score matching ------------------------------------------------------------------------------
@pytest.mark.parametrize("t", [1, 100, 999])
def test_l_simple_at_t_is_two_times_one_minus_alpha_bar_times_dsm(t):
    def model(x, t):   # any eps-model will do; float64, since at t = 1 DSM divides by sqrt(1 - alpha-bar_1) = 0.01
        return torch.tanh(x.flip(1)) + t[:, None] / 1000
    x0 = md.toy_data("eight_gaussians", 256, seed=0).double()
    noise = randn(256, 2, seed=5)
    tt = torch.full((256,), t)
    with torch.no_grad():
        simple = md.epsilon_loss(model, x0, S_LIN, t=tt, noise=noise)
        dsm = md.dsm_loss(md.score_model(model, S_LIN), x0, t, S_LIN, noise=noise)
        per = md.dsm_loss(md.score_model(model, S_LIN), x0, tt, S_LIN, noise=noise, reduction="none")
    ab = float(S_LIN.alpha_bars[t])
    assert float(simple) == pytest.approx(2 * (1 - ab) * float(dsm), rel=1e-10)
    assert per.shape == (256,) and float(per.mean()) == pytest.approx(float(dsm), rel=1e-6)


def test_the_exact_score_has_the_dsm_floor_and_a_wrong_score_does_worse():
    model, x0 = mixture(), mixture().sample_data(4000, torch.Generator().manual_seed(0), torch.float64)
    noise = randn(4000, 2, seed=6)
    exact = md.dsm_loss(md.score_model(model, S_LIN), x0, 200, S_LIN, noise=noise)
    shifted = md.dsm_loss(lambda x, t: md.score_model(model, S_LIN)(x, t) + 0.3, x0, 200, S_LIN, noise=noise)
    # DSM = explicit score matching + a constant: a constant offset c adds c^2 / 2 per element
    assert float(shifted - exact) == pytest.approx(0.3**2 / 2, abs=0.02)


# -- Langevin dynamics -----------------------------------------------------------------------------------------
def test_the_unadjusted_chain_on_a_gaussian_reaches_its_closed_form_stationary_law():
    n, delta = 20_000, 0.3
    cov = torch.tensor([[1.0, 0.3], [0.3, 0.4]], dtype=torch.float64)
    prec, m = torch.linalg.inv(cov), torch.tensor([1.0, -2.0], dtype=torch.float64)
    x = md.langevin(lambda x: -(x - m) @ prec, randn(n, 2, seed=7) * 3, delta, 150,
                    generator=torch.Generator().manual_seed(8))
    stationary = md.score.gaussian_langevin_covariance(cov, delta)
    emp = torch.cov(x.T)
    # Monte Carlo error of a covariance entry: sd <= sqrt((S_ii S_jj + S_ij^2) / n) < 0.011; allow 4 sd
    se = ((stationary.diag()[:, None] * stationary.diag()[None] + stationary**2) / n).sqrt()
    assert ((emp - stationary).abs() < 4 * se).all(), (emp, stationary)
    # the step-size bias (0.1 on the smaller variance) is twice the tolerance: a chain that reached C fails
    assert (stationary - cov).abs().max() > 8 * se.max()
    assert (x.mean(0) - m).abs().max() < 4 * math.sqrt(float(stationary.diag().max()) / n)


def test_langevin_step_is_song_and_ermons_update_and_the_chain_is_seeded():
    x, s, z = randn(5, 2), randn(5, 2, seed=1), randn(5, 2, seed=2)
    torch.testing.assert_close(md.langevin_step(x, s, 0.04, z), x + 0.02 * s + 0.2 * z)
    run = lambda: md.langevin(lambda x: -x, x, 0.1, 5, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(run(), run())
    assert md.langevin(lambda x: -x, x, 0.1, 5, trajectory=True).shape == (6, 5, 2)


def test_annealed_langevin_is_algorithm_1_step_sizes_eps_sigma_i_squared_over_sigma_l_squared():
    x, calls = randn(3, 2), []

    def score(x, level):
        calls.append(level)
        return -x * level

    out = md.annealed_langevin(score, x, [10, 20], [2.0, 0.5], 3, 0.01, generator=torch.Generator().manual_seed(1))
    g, ref = torch.Generator().manual_seed(1), x
    for level, alpha in ((10, 0.01 * 16), (20, 0.01)):
        for _ in range(3):
            ref = md.langevin_step(ref, -ref * level, alpha, torch.randn(3, 2, dtype=torch.float64, generator=g))
    torch.testing.assert_close(out, ref)
    assert calls == [10] * 3 + [20] * 3


def test_annealed_langevin_from_noise_ends_in_the_last_levels_closed_form_stationary_law():
    model, levels, n = gauss(), [1000, 300, 100], 10_000
    sigmas = [math.sqrt(1 - float(S_LIN.alpha_bars[t])) for t in levels]
    x = md.annealed_langevin(md.score_model(model, S_LIN), randn(n, 2, seed=9), levels, sigmas, 200, 0.1,
                             generator=torch.Generator().manual_seed(10))
    # the last level runs 200 steps of size epsilon = 0.1 on q_100 = N(sqrt(ab) m, Sigma_100): its law is
    # the unadjusted chain's stationary law there (closed form), up to Monte Carlo error (4 sd)
    ab = S_LIN.alpha_bars[100]
    target = md.score.gaussian_langevin_covariance(ab * COV + (1 - ab) * torch.eye(2, dtype=torch.float64), 0.1)
    se = ((target.diag()[:, None] * target.diag()[None] + target**2) / n).sqrt()
    assert ((torch.cov(x.T) - target).abs() < 4 * se).all(), (torch.cov(x.T), target)
    assert ((x.mean(0) - ab.sqrt() * MEAN).abs() < 4 * (target.diag() / n).sqrt()).all()


# -- the probability-flow ODE -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("t,t_prev", [(1000, 0), (500, 499), (700, 120), (2, 1), (1, 0)])
def test_the_ddim_step_with_eta_0_is_the_euler_step_of_eq_14(t, t_prev):
    x, eps = randn(50, 2, seed=11), randn(50, 2, seed=12)
    ddim, _ = md.ddim_step(x, eps, t, t_prev, S_LIN, eta=0.0)
    assert (md.euler_step(x, eps, t, t_prev, S_LIN) - ddim).abs().max() < 1e-12
    tb, tpb = torch.full((50,), t), torch.full((50,), t_prev)
    assert (md.euler_step(x, eps, tb, tpb, S_LIN) - ddim).abs().max() < 1e-12


@pytest.mark.parametrize("t,t_prev", [(1000, 0), (1000, 999), (500, 499), (700, 120), (2, 1), (1, 0)])
def test_the_pf_euler_step_is_ddim_eq_15_and_differs_from_ddim_by_a_second_order_term(t, t_prev):
    """DDIM eq. 15 as printed (alpha there is our bar-alpha), and its exact gap to eq. 13:
    (sigma_t - sigma_prev)^2 / (2 sigma_t) eps in x-bar, i.e. (sigma_t - sigma_prev) / (2 sigma_t) of DDIM's move."""
    x, eps = randn(50, 2, seed=11), randn(50, 2, seed=12)
    a, a_prev = S_LIN.alpha_bars[t], S_LIN.alpha_bars[t_prev]
    printed = (x / a.sqrt() + 0.5 * ((1 - a_prev) / a_prev - (1 - a) / a) * (a / (1 - a)).sqrt() * eps) * a_prev.sqrt()
    step = md.pf_euler_step(x, eps, t, t_prev, S_LIN)
    assert (step - printed).abs().max() < 1e-12
    tb, tpb = torch.full((50,), t), torch.full((50,), t_prev)
    assert (md.pf_euler_step(x, eps, tb, tpb, S_LIN) - printed).abs().max() < 1e-12
    s, s_prev = float(md.ode_sigma(S_LIN, t)), float(md.ode_sigma(S_LIN, t_prev))
    ddim = md.euler_step(x, eps, t, t_prev, S_LIN)
    gap = (s - s_prev) ** 2 / (2 * s) * eps * a_prev.sqrt()
    torch.testing.assert_close(step - ddim, gap, rtol=1e-9, atol=1e-12)
    # the gap relative to DDIM's move in x-bar is (sigma_t - sigma_prev) / (2 sigma_t): first order agreement
    move = (ddim / a_prev.sqrt() - x / a.sqrt())
    ratio = ((step - ddim) / a_prev.sqrt()).norm() / move.norm()
    assert float(ratio) == pytest.approx((s - s_prev) / (2 * s), rel=1e-9)


def test_a_small_pf_euler_step_agrees_with_ddim_to_first_order_and_a_step_to_0_goes_half_as_far():
    x, eps = randn(50, 2, seed=21), randn(50, 2, seed=22)
    s = float(md.ode_sigma(S_LIN, 1000))
    gaps = []
    for t_prev in (900, 990, 999):   # steps of 100, 10, 1 from t = 1000
        a, a_prev = S_LIN.alpha_bars[1000], S_LIN.alpha_bars[t_prev]
        ddim = md.euler_step(x, eps, 1000, t_prev, S_LIN)
        gap = (md.pf_euler_step(x, eps, 1000, t_prev, S_LIN) - ddim) / a_prev.sqrt()   # in x-bar
        gaps.append(float(gap.norm() / (ddim / a_prev.sqrt() - x / a.sqrt()).norm()))
        # relative to DDIM's move in x-bar, the gap vanishes with the step in sigma, at the rate 1 / (2 sigma_t)
        assert gaps[-1] / (s - float(md.ode_sigma(S_LIN, t_prev))) == pytest.approx(1 / (2 * s), rel=1e-9)
    assert gaps[0] > gaps[1] > gaps[2] and gaps[2] < 0.01
    a = S_LIN.alpha_bars[50]
    half = md.pf_euler_step(x, eps, 50, 0, S_LIN) - x / a.sqrt()
    torch.testing.assert_close(half, 0.5 * (md.euler_step(x, eps, 50, 0, S_LIN) - x / a.sqrt()), rtol=1e-12, atol=1e-12)


def test_bad_input_to_the_pf_euler_step_names_the_argument():
    x = randn(4, 2)
    with pytest.raises(ValueError, match="eps"):
        md.pf_euler_step(x, x[:, :1], 10, 5, S_LIN)
    with pytest.raises(ValueError, match="t_prev"):
        md.pf_euler_step(x, x, 10, 10, S_LIN)
    with pytest.raises(ValueError, match="t"):
        md.pf_euler_step(x, x, 1001, 5, S_LIN)
    with pytest.raises(TypeError, match="x_t"):
        md.pf_euler_step(x.numpy(), x, 10, 5, S_LIN)


def test_the_reference_solution_on_gaussian_data_is_the_closed_form_flow_map():
    x, sigma_T = randn(200, 2, seed=13), float(md.ode_sigma(S_LIN, 1000))
    for s0, s1 in ((sigma_T, 0.0), (sigma_T, float(md.ode_sigma(S_LIN, 100))), (0.3, 2.0)):
        ref = md.pf_ode_solve(gauss(), x, s0, s1, S_LIN)
        assert (ref - md.gaussian_flow_map(x, s0, s1, MEAN, COV)).abs().max() < 1e-6
    # the flow map carries q(x_T) to the data law: moments of 20k transported draws
    xT = randn(20_000, 2, seed=14) * math.sqrt(1 - float(S_LIN.alpha_bars[-1])) + float(S_LIN.alpha_bars[-1].sqrt()) * MEAN
    x0 = md.gaussian_flow_map(xT, sigma_T, 0.0, MEAN, COV)
    assert (torch.cov(x0.T) - COV).abs().max() < 0.05 and (x0.mean(0) - MEAN).abs().max() < 0.03


def _errors_at_t(sampler, S_values, t_end=100):
    x, sigma_T = randn(300, 2, seed=15), float(md.ode_sigma(S_LIN, 1000))
    exact = md.gaussian_flow_map(x, sigma_T, float(md.ode_sigma(S_LIN, t_end)), MEAN, COV)
    errors = []
    for S in S_values:
        run = sampler(gauss(), x, S_LIN, md.timesteps(1000, S, "trailing"), trajectory=True)
        k = int((run.times == t_end).nonzero())
        errors.append(float((run.xs[k] - exact).square().sum(1).mean().sqrt()))
    return np.polyfit(np.log(S_values), np.log(errors), 1)[0]


def test_measured_orders_ddim_is_first_order_and_heun_second_order_on_gaussian_data():
    S_values = [20, 50, 100, 200]
    ddim = _errors_at_t(lambda *a, **k: md.sample(*a, eta=0.0, **k), S_values)
    heun = _errors_at_t(md.heun, S_values)
    assert abs(ddim + 1) < 0.15, ddim
    assert abs(heun + 2) < 0.15, heun


def _walk(step, model, x, S, t_end):
    """Steps of ``step`` with the model's eps on the trailing grid of S steps, from T down to t_end."""
    tau = md.timesteps(1000, S, "trailing").tolist()[::-1] + [0]
    for t, t_prev in zip(tau, tau[1:]):
        x = step(x, model(x, torch.full((len(x),), t)), t, t_prev, S_LIN)
        if t_prev == t_end:
            return x
    raise AssertionError(f"the grid of {S} steps does not hold t = {t_end}")


@pytest.mark.parametrize("t_end", [100, 0])
def test_eq_15_converges_at_first_order_to_the_reference_solution_with_a_larger_error_than_ddim(t_end):
    """Against pf_ode_solve on the exact Gaussian model: the error of eq. 15 (Euler in the VE SDE's time) falls like
    1/S, like DDIM's (Euler in sigma), and is larger than DDIM's at every S here (measured 9-20 times)."""
    x, sigma_T = randn(300, 2, seed=15), float(md.ode_sigma(S_LIN, 1000))
    ref = md.pf_ode_solve(gauss(), x, sigma_T, float(md.ode_sigma(S_LIN, t_end)), S_LIN)
    S_values = [50, 100, 200, 500, 1000]
    err = {step: [float((_walk(step, gauss(), x, S, t_end) - ref).square().sum(1).mean().sqrt()) for S in S_values]
           for step in (md.pf_euler_step, md.euler_step)}
    for step, errors in err.items():
        slope = np.polyfit(np.log(S_values), np.log(errors), 1)[0]
        assert abs(slope + 1) < 0.15, (step.__name__, slope)
    assert all(e15 > 5 * e13 for e15, e13 in zip(err[md.pf_euler_step], err[md.euler_step]))


def test_heun_costs_2s_minus_1_evaluations_and_its_stages_are_ddim_steps():
    calls = []

    def model(x, t):
        calls.append(int(t[0]))
        return gauss()(x, t)

    x, tau = randn(4, 2, seed=16), md.timesteps(1000, 5, "trailing")
    out = md.heun(model, x, S_LIN, tau)
    assert len(calls) == 2 * 5 - 1 and calls[-1] == 200
    # one step by hand: predictor and corrector are the DDIM (eta = 0) step
    e1 = gauss()(x, 1000)
    x_pred, _ = md.ddim_step(x, e1, 1000, 800, S_LIN)
    x_heun, _ = md.ddim_step(x, (e1 + gauss()(x_pred, 800)) / 2, 1000, 800, S_LIN)
    torch.testing.assert_close(md.heun(gauss(), x, S_LIN, torch.tensor([800, 1000]), trajectory=True).xs[1], x_heun)
    assert out.shape == x.shape


# -- the sigma shape fix ----------------------------------------------------------------------------------------------
def test_a_per_row_sigma_from_ddim_sigma_broadcasts_in_q_sigma_posterior():
    t = torch.tensor([10, 500, 900])
    tp = t - 3
    sigma = md.ddim_sigma(S_LIN, t, tp, 1.0)
    assert sigma.shape == (3,)
    x0, xt = randn(3, 2, seed=17), randn(3, 2, seed=18)
    mean, var = md.q_sigma_posterior(x0, xt, t, tp, sigma, S_LIN)
    for i in range(3):
        m_i, v_i = md.q_sigma_posterior(x0[i:i + 1], xt[i:i + 1], int(t[i]), int(tp[i]), float(sigma[i]), S_LIN)
        torch.testing.assert_close(mean[i:i + 1], m_i)
        assert float(var[i].max()) == pytest.approx(float(v_i))
    with pytest.raises(ValueError, match="sigma"):
        md.q_sigma_posterior(x0, xt, t, tp, torch.full((4,), 0.01), S_LIN)
    with pytest.raises(ValueError, match="sigma"):
        md.q_sigma_posterior(x0, xt, t, tp, torch.full((3, 3), 0.01), S_LIN)


# -- bad input ------------------------------------------------------------------------------------------------------
def test_bad_input_gets_an_error_naming_the_argument():
    x = randn(4, 2)
    for bad in (0, -0.1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="step_size"):
            md.langevin(lambda x: -x, x, bad, 10)
        with pytest.raises(ValueError, match="step_size"):
            md.langevin_step(x, -x, bad, x)
    with pytest.raises(TypeError, match="step_size"):
        md.langevin(lambda x: -x, x, "0.1", 10)
    for bad in (0, -3):
        with pytest.raises(ValueError, match="n_steps"):
            md.langevin(lambda x: -x, x, 0.1, bad)
        with pytest.raises(ValueError, match="steps_per_level"):
            md.annealed_langevin(lambda x, l: -x, x, [1], [1.0], bad, 0.1)
    with pytest.raises(ValueError, match="score"):
        md.langevin(lambda x: x[:, :1], x, 0.1, 3)
    with pytest.raises(ValueError, match="score"):
        md.annealed_langevin(lambda x, l: x.sum(), x, [1], [1.0], 2, 0.1)
    with pytest.raises(ValueError, match="epsilon"):
        md.annealed_langevin(lambda x, l: -x, x, [1], [1.0], 2, 0.0)
    with pytest.raises(ValueError, match="sigmas"):
        md.annealed_langevin(lambda x, l: -x, x, [1, 2], [0.5, 1.0], 2, 0.1)
    with pytest.raises(ValueError, match="levels"):
        md.annealed_langevin(lambda x, l: -x, x, [1], [1.0, 0.5], 2, 0.1)
    sigma_T = float(md.ode_sigma(S_LIN, 1000))
    with pytest.raises(ValueError, match="sigma_end"):
        md.pf_ode_solve(gauss(), x, sigma_T, -0.1, S_LIN)
    with pytest.raises(ValueError, match="sigma"):
        md.pf_ode_solve(gauss(), x, sigma_T * 1.01, 0.0, S_LIN)
    with pytest.raises(TypeError, match="eps_at"):
        md.pf_ode_solve(md.MLP(), x, sigma_T, 0.0, S_LIN)
    with pytest.raises(ValueError, match="alpha_bar"):
        gauss().eps_at(x, 0.0)
    with pytest.raises(ValueError, match="t"):
        md.dsm_loss(md.score_model(gauss(), S_LIN), x, 0, S_LIN)
    with pytest.raises(ValueError, match="score"):
        md.dsm_loss(lambda x, t: x[:1], x, 3, S_LIN)
    with pytest.raises(ValueError, match="model"):
        md.heun(lambda x, t: x[:1], x, S_LIN, [5, 10])
    with pytest.raises(ValueError, match="timesteps"):
        md.heun(gauss(), x, S_LIN, [10, 5])
    with pytest.raises(ValueError, match="step_size"):
        md.score.gaussian_langevin_covariance(COV, 10.0)


def test_heun_step_takes_per_row_times_and_is_the_euler_step_where_t_prev_is_0():
    x, t, tp = randn(3, 2, seed=19), torch.tensor([900, 50, 7]), torch.tensor([600, 0, 3])
    out, _ = md.heun_step(gauss(), x, t, tp, S_LIN)
    for i in range(3):
        row, _ = md.heun_step(gauss(), x[i:i + 1], int(t[i]), int(tp[i]), S_LIN)
        torch.testing.assert_close(out[i:i + 1], row)
    euler, _ = md.ddim_step(x[1:2], gauss()(x[1:2], 50), 50, 0, S_LIN)
    torch.testing.assert_close(out[1:2], euler)
