"""The generalized DDIM step, the samplers and inversion, checked against DDPM's Algorithm 2 and the
exact Gaussian model, whose deterministic sampler is an affine map we can write down independently."""

import math

import numpy as np
import pytest
import torch

import minddim as md


# -- timesteps ---------------------------------------------------------------------------------
@pytest.mark.parametrize("S", [10, 20, 50, 100])
def test_uniform_timesteps_are_the_official_ddim_sequence_shifted_to_one_based(S):
    official = np.arange(0, 1000, 1000 // S)  # DDIM's code: range(0, num_timesteps, skip), 0-based
    assert md.timesteps(1000, S, "uniform").tolist() == (official + 1).tolist()


@pytest.mark.parametrize("S", [10, 20])
def test_quadratic_timesteps_match_the_official_ddim_code(S):
    official = (np.linspace(0, np.sqrt(1000 * 0.8), S) ** 2).astype(int)  # 0-based, no collisions here
    assert md.timesteps(1000, S, "quadratic").tolist() == (official + 1).tolist()


@pytest.mark.parametrize("kind", md.sampling.TIMESTEP_KINDS)
@pytest.mark.parametrize("T,S", [(1000, 1), (1000, 7), (1000, 50), (1000, 100), (1000, 999), (1000, 1000), (10, 10), (37, 5)])
def test_timesteps_are_strictly_increasing_inside_1_to_T(kind, T, S):
    tau = md.timesteps(T, S, kind)
    assert tau.dtype == torch.long and tau.shape == (S,)
    assert tau.min() >= 1 and tau.max() <= T and (tau.diff() > 0).all()
    if S == T:
        assert tau.tolist() == list(range(1, T + 1))
    if kind == "trailing":
        assert tau[-1] == T
    else:
        assert tau[0] == 1


# -- the step ------------------------------------------------------------------------------------
def test_ddim_step_with_eta_1_is_the_ddpm_ancestral_step(schedule, gen):
    """DDPM Algorithm 2: x_{t-1} = (x_t - beta_t / sqrt(1 - ab_t) eps) / sqrt(alpha_t) + sigma_t z, sigma_t^2 =
    tilde-beta_t, written out here independently of the package, for every t at once."""
    T = schedule.T
    t = torch.arange(1, T + 1)
    x = torch.randn(T, 3, generator=gen, dtype=torch.float64)
    eps = torch.randn(T, 3, generator=gen, dtype=torch.float64)
    z = torch.randn(T, 3, generator=gen, dtype=torch.float64)
    b = np.linspace(1e-4, 0.02, T)
    ab = np.cumprod(1 - b)
    ab_prev = np.concatenate([[1.0], ab[:-1]])
    sigma = np.sqrt((1 - ab_prev) / (1 - ab) * b)
    col = lambda v: torch.tensor(v)[:, None]  # noqa: E731
    expected = (x - col(b / np.sqrt(1 - ab)) * eps) / col(np.sqrt(1 - b)) + col(sigma) * z
    got, _ = md.ddim_step(x, eps, t, t - 1, schedule, eta=1.0, noise=z)
    assert torch.allclose(got, expected, rtol=1e-9, atol=1e-10)


def test_ddim_step_with_eta_0_is_eq_12(schedule, gen):
    x = torch.randn(4, 2, generator=gen, dtype=torch.float64)
    eps = torch.randn(4, 2, generator=gen, dtype=torch.float64)
    t, tp = torch.tensor([1000, 500, 21, 3]), torch.tensor([900, 0, 1, 2])
    ab, abp = schedule.alpha_bars[t][:, None], schedule.alpha_bars[tp][:, None]
    x0 = (x - (1 - ab).sqrt() * eps) / ab.sqrt()
    got, x0_hat = md.ddim_step(x, eps, t, tp, schedule, eta=0.0)
    assert torch.allclose(x0_hat, x0) and torch.allclose(got, abp.sqrt() * x0 + (1 - abp).sqrt() * eps)


def test_ddim_sigma_eq_16(schedule):
    assert md.ddim_sigma(schedule, 10, 9, 1.0) ** 2 == pytest.approx(schedule.beta_tildes[10].item(), rel=1e-12)
    ab, abp = schedule.alpha_bars[600].item(), schedule.alpha_bars[400].item()
    expected = 0.3 * math.sqrt((1 - abp) / (1 - ab)) * math.sqrt(1 - ab / abp)
    assert md.ddim_sigma(schedule, 600, 400, 0.3).item() == pytest.approx(expected, rel=1e-12)
    assert md.ddim_sigma(schedule, 600, 400, 0.0).item() == 0
    assert md.ddim_sigma(schedule, 5, 0, 1.0).item() == 0  # the last step to x_0 adds no noise


def test_sigma_hat_keeps_the_eta1_mean_and_uses_the_larger_variance(schedule, gen):
    x = torch.randn(3, 2, generator=gen, dtype=torch.float64)
    eps = torch.randn(3, 2, generator=gen, dtype=torch.float64)
    z = torch.randn(3, 2, generator=gen, dtype=torch.float64)
    mean_eta1, _ = md.ddim_step(x, eps, 300, 200, schedule, eta=1.0, noise=torch.zeros_like(z))
    got, _ = md.ddim_step(x, eps, 300, 200, schedule, eta="sigma_hat", noise=z)
    sigma_hat = math.sqrt(1 - schedule.alpha_bars[300].item() / schedule.alpha_bars[200].item())
    assert torch.allclose(got, mean_eta1 + sigma_hat * z)
    # unit stride: sigma-hat^2 = beta_t, DDPM's sigma_t^2 = beta_t choice
    assert md.ddim_sigma(schedule, 300, 299, "sigma_hat").item() ** 2 == pytest.approx(schedule.betas[300].item(), rel=1e-9)
    last, x0_hat = md.ddim_step(x, eps, 7, 0, schedule, eta="sigma_hat", noise=z)
    assert torch.allclose(last, x0_hat)  # no noise on the final step


# -- samplers with the exact Gaussian model ---------------------------------------------------------
def _ddim_affine_law(gaussian, schedule, tau):
    """Independent numpy: for Gaussian data the eta = 0 step is x' = M x + c; push N(0, I) through it."""
    m, C = gaussian.mean.numpy(), gaussian.cov.numpy()
    ab_all = np.cumprod(np.concatenate([[1.0], 1 - np.linspace(1e-4, 0.02, 1000)]))
    D = len(m)
    A, b = np.eye(D), np.zeros(D)          # x = A x_T + b
    walk = list(tau[::-1]) + [0]
    for t, tp in zip(walk[:-1], walk[1:]):
        ab, abp = ab_all[t], ab_all[tp]
        P = np.linalg.inv(ab * C + (1 - ab) * np.eye(D))
        k = math.sqrt(1 - abp) - math.sqrt(abp * (1 - ab) / ab)
        M = math.sqrt(abp / ab) * np.eye(D) + k * math.sqrt(1 - ab) * P
        c = -k * math.sqrt(1 - ab) * math.sqrt(ab) * P @ m
        A, b = M @ A, M @ b + c
    return A, b


@pytest.mark.parametrize("S", [5, 50])
def test_deterministic_ddim_is_the_independently_derived_affine_map(gaussian, schedule, gen, S):
    tau = md.timesteps(schedule.T, S).tolist()
    A, b = _ddim_affine_law(gaussian, schedule, tau)
    x_T = torch.randn(200, 2, generator=gen, dtype=torch.float64)
    got = md.sample(gaussian, x_T, schedule, tau, eta=0.0)
    np.testing.assert_allclose(got.numpy(), x_T.numpy() @ A.T + b, rtol=1e-8, atol=1e-9)
    # ... so its samples follow N(b, A A^T): check that law by Monte Carlo (5 standard errors)
    n = 20_000
    x = md.sample(gaussian, torch.randn(n, 2, generator=gen, dtype=torch.float64), schedule, tau, eta=0.0).numpy()
    cov = A @ A.T
    se_mean = np.sqrt(np.diag(cov) / n)
    assert (np.abs(x.mean(0) - b) < 5 * se_mean).all()
    se_cov = np.sqrt((np.outer(np.diag(cov), np.diag(cov)) + cov**2) / n)
    assert (np.abs(np.cov(x.T) - cov) < 5 * se_cov).all()


def test_deterministic_ddim_law_approaches_the_data_as_S_grows(gaussian, schedule):
    """The exact error of the eta = 0 sampler with a perfect model: ||cov_S - C|| + ||mean_S - m|| falls with S."""
    m, C = gaussian.mean.numpy(), gaussian.cov.numpy()
    errors = []
    for S in (2, 5, 10, 20, 50, 100, 1000):
        A, b = _ddim_affine_law(gaussian, schedule, md.timesteps(1000, S).tolist())
        errors.append(np.linalg.norm(A @ A.T - C) + np.linalg.norm(b - m))
    assert all(e1 > e2 for e1, e2 in zip(errors, errors[1:])), errors
    assert errors[-1] < 0.01 and errors[0] > 10 * errors[-1]


def test_ddpm_and_ddim_reproduce_the_data_mean_and_covariance(gaussian, schedule):
    """With the exact model, DDPM (1000 ancestral steps) and DDIM (eta = 0, 1000 steps) sample N(m, C):
    n = 10k samples, tolerance 5 standard errors of the Monte Carlo estimates."""
    n = 10_000
    g = torch.Generator().manual_seed(7)
    x_T = torch.randn(n, 2, generator=g, dtype=torch.float64)
    m, C = gaussian.mean.numpy(), gaussian.cov.numpy()
    se_mean = np.sqrt(np.diag(C) / n)
    se_cov = np.sqrt((np.outer(np.diag(C), np.diag(C)) + C**2) / n)
    for x in (md.ddpm(gaussian, x_T, schedule, generator=g), md.ddim(gaussian, x_T, schedule, 1000, eta=0.0)):
        x = x.numpy()
        assert (np.abs(x.mean(0) - m) < 5 * se_mean).all()
        assert (np.abs(np.cov(x.T) - C) < 5 * se_cov + 0.01).all()  # + the sampler's own O(1/T) bias


def test_ddpm_is_the_eta1_sampler_over_all_steps(gaussian, schedule):
    x_T = torch.randn(50, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    a = md.ddpm(gaussian, x_T, schedule, generator=torch.Generator().manual_seed(3))
    b = md.sample(gaussian, x_T, schedule, md.timesteps(1000, 1000), eta=1.0, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_encode_then_decode_reconstructs_x0_better_as_S_grows(gaussian, schedule, gen):
    x0 = gaussian.sample_data(500, gen, dtype=torch.float64)
    errors = []
    for S in (10, 50, 200, 1000):
        tau = md.timesteps(schedule.T, S)
        x_T = md.encode(gaussian, x0, schedule, tau)
        x0_rec = md.sample(gaussian, x_T, schedule, tau, eta=0.0)
        errors.append((x0_rec - x0).pow(2).mean().sqrt().item())
    assert all(e1 > e2 for e1, e2 in zip(errors, errors[1:])), errors
    assert errors[-1] < 0.01, errors
    # the encoding is a latent with the prior's law: roughly N(0, I)
    x_T = md.encode(gaussian, gaussian.sample_data(20_000, gen, dtype=torch.float64), schedule, md.timesteps(1000, 100))
    assert x_T.mean(0).abs().max() < 0.05 and (x_T.var(0) - 1).abs().max() < 0.05


def test_trajectory_outputs(mixture, schedule, gen):
    tau = md.timesteps(schedule.T, 10)
    out = md.sample(mixture, torch.randn(8, 2, generator=gen), schedule, tau, eta=0.5, trajectory=True,
                    generator=gen)
    assert out.xs.shape == (11, 8, 2) and out.x0_preds.shape == (10, 8, 2)
    assert out.times.tolist() == tau.flip(0).tolist() + [0]
    assert torch.equal(out.xs[-1], out.x0) and torch.allclose(out.x0_preds[-1], out.x0)


def test_samplers_are_reproducible_with_a_generator(mixture, schedule):
    x_T = torch.randn(16, 2, generator=torch.Generator().manual_seed(0))
    runs = [md.ddim(mixture, x_T, schedule, 20, eta=1.0, generator=torch.Generator().manual_seed(5)) for _ in range(2)]
    assert torch.equal(*runs)


def test_sample_checks_what_the_model_returns(schedule):
    with pytest.raises(ValueError, match="model"):
        md.sample(lambda x, t: x[:, :1], torch.zeros(4, 2), schedule, [1, 2])


# -- slerp ---------------------------------------------------------------------------------------
def test_slerp_endpoints_norm_and_angle(gen):
    z0 = torch.randn(3, 64, generator=gen, dtype=torch.float64)
    z1 = torch.randn(3, 64, generator=gen, dtype=torch.float64)
    assert torch.allclose(md.slerp(z0, z1, 0.0), z0) and torch.allclose(md.slerp(z0, z1, 1.0), z1)
    e0, e1 = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    mid = md.slerp(e0, e1, 0.5)
    assert torch.allclose(mid, torch.tensor([[math.sqrt(0.5), math.sqrt(0.5)]]))
    path = md.slerp(e0, e1, torch.linspace(0, 1, 7))
    assert path.shape == (7, 1, 2) and torch.allclose(path.norm(dim=-1), torch.ones(7, 1))
    angles = torch.atan2(path[:, 0, 1], path[:, 0, 0])
    assert torch.allclose(angles, torch.linspace(0, math.pi / 2, 7), atol=1e-6)
    assert torch.allclose(md.slerp(e0, e0, 0.3), e0)  # parallel: falls back to linear


@pytest.mark.parametrize("eta", [0.0, 0.5, 1.0, "sigma_hat"])
@pytest.mark.parametrize("clip_x0", [None, 1.0])
def test_sample_is_ddim_step_iterated_bit_for_bit(eta, clip_x0):
    """`sample` validates once and precomputes each step's coefficients; the numbers must be exactly those
    of calling the public `ddim_step` along the same walk with the same generator."""
    s = md.Schedule.linear()
    g = torch.Generator().manual_seed(0)
    x_T, e = torch.randn(8, 1, 6, 6, generator=g), torch.randn(8, 1, 6, 6, generator=g)

    def model(x, t):
        return 0.3 * e + 0.1 * x + t[:, None, None, None] / 2000

    tau = md.timesteps(1000, 20, "quadratic")
    fast = md.sample(model, x_T, s, tau, eta, generator=torch.Generator().manual_seed(3), clip_x0=clip_x0)
    x, g2 = x_T, torch.Generator().manual_seed(3)
    walk = [0] + tau.tolist()
    for t, t_prev in zip(walk[::-1][:-1], walk[::-1][1:]):
        x, _ = md.ddim_step(x, model(x, torch.full((8,), t)), t, t_prev, s, eta, generator=g2, clip_x0=clip_x0)
    assert torch.equal(fast, x)
