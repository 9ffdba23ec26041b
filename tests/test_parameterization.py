"""The converters between eps, x_0, v, the score and mu (minddim.parameterization), the objectives on x_0-, v- and
learned-variance networks (DDPM Table 2's rows), and ancestral sampling with a learned variance; against closed
forms."""

import math

import pytest
import torch

import minddim as md
from minddim.parameterization import PREDICTIONS


def _draws(schedule, n=2000, seed=0):
    g = torch.Generator().manual_seed(seed)
    x0 = torch.randn(n, 2, generator=g, dtype=torch.float64) * 1.5 + 0.3
    eps = torch.randn(n, 2, generator=g, dtype=torch.float64)
    t = torch.randint(1, schedule.T + 1, (n,), generator=g)
    t[:4] = torch.tensor([1, 2, schedule.T - 1, schedule.T])       # both ends of the schedule
    return x0, eps, t, md.q_sample(x0, t, schedule, eps)


@pytest.mark.parametrize("prediction", PREDICTIONS)
def test_round_trip(schedule, prediction):
    x0, eps, t, x_t = _draws(schedule)
    out = md.from_eps(eps, x_t, t, schedule, prediction)
    assert torch.allclose(md.to_eps(out, x_t, t, schedule, prediction), eps, rtol=0, atol=1e-9)


def test_converters_give_the_closed_forms_of_the_true_quantities(schedule):
    x0, eps, t, x_t = _draws(schedule)
    ab = schedule.alpha_bars[t][:, None]
    v = ab.sqrt() * eps - (1 - ab).sqrt() * x0                      # Salimans & Ho 2022's v (their dpm.py)
    assert torch.allclose(md.v_target(x0, eps, t, schedule), v, atol=1e-15)
    assert torch.allclose(md.from_eps(eps, x_t, t, schedule, "x0"), x0, atol=1e-9)
    assert torch.allclose(md.from_eps(eps, x_t, t, schedule, "v"), v, atol=1e-9)
    assert torch.allclose(md.to_eps(v, x_t, t, schedule, "v"), eps, atol=1e-12)
    assert torch.allclose(ab.sqrt() * x_t - (1 - ab).sqrt() * v, x0, atol=1e-12)      # x_0 = a x_t - s v
    assert torch.allclose(md.from_eps(eps, x_t, t, schedule, "score"), -eps / (1 - ab).sqrt(), atol=1e-12)
    assert torch.allclose(md.from_eps(eps, x_t, t, schedule, "mu"), md.q_posterior(x0, x_t, t, schedule)[0],
                          atol=1e-9)                                 # DDPM eq. 10: mu from the true noise


def test_exact_gaussian_model_gives_tweedies_posterior_mean(schedule, gaussian):
    """For x_0 ~ N(m, C): E[x_0 | x_t] = m + sqrt(ab) C (ab C + (1 - ab) I)^{-1} (x_t - sqrt(ab) m); the exact model's
    E[eps | x_t] converted to x_0 and to v must be this mean and E[v | x_t] = a E[eps|x_t] - s E[x_0|x_t]."""
    m, C = gaussian.mean, gaussian.cov
    g = torch.Generator().manual_seed(1)
    x_t = torch.randn(500, 2, generator=g, dtype=torch.float64) * 1.3
    for t in (1, 10, 300, 1000):
        tb = torch.full((500,), t)
        ab = schedule.alpha_bars[t]
        S = ab * C + (1 - ab) * torch.eye(2, dtype=torch.float64)
        post = m + ab.sqrt() * (x_t - ab.sqrt() * m) @ torch.linalg.solve(S, C).T
        eps = gaussian(x_t, tb)
        assert torch.allclose(md.from_eps(eps, x_t, tb, schedule, "x0"), post, atol=1e-8 / ab.sqrt().item())
        e_eps = (x_t - ab.sqrt() * post) / (1 - ab).sqrt()
        assert torch.allclose(md.from_eps(eps, x_t, tb, schedule, "v"), ab.sqrt() * e_eps - (1 - ab).sqrt() * post,
                              atol=1e-8 / ab.sqrt().item())
        score = md.from_eps(eps, x_t, tb, schedule, "score")
        assert torch.allclose(md.tweedie(x_t, score, tb, schedule), post, atol=1e-8 / ab.sqrt().item())


@pytest.mark.parametrize("prediction", PREDICTIONS)
def test_error_weight(schedule, prediction):
    x0, eps, t, x_t = _draws(schedule)
    delta = 1e-3 * torch.randn_like(eps, generator=torch.Generator().manual_seed(2))
    d_out = md.from_eps(eps + delta, x_t, t, schedule, prediction) - md.from_eps(eps, x_t, t, schedule, prediction)
    ratio = (d_out ** 2).sum(1) / (delta ** 2).sum(1)
    assert torch.allclose(ratio, md.error_weight(t, schedule, prediction), rtol=1e-6)
    ab = schedule.alpha_bars[t]
    if prediction == "x0":
        assert torch.allclose(md.error_weight(t, schedule, "x0"), (1 - ab) / ab)       # 1 / SNR_t
    if prediction == "v":
        assert torch.allclose(md.error_weight(t, schedule, "v"), 1 + (1 - ab) / ab)   # 1 + 1 / SNR_t


def _noisy_eps_model(gaussian, scale=0.1):
    def model(x_t, t):
        return gaussian(x_t, t) * (1 + scale) + scale
    return model


@pytest.mark.parametrize("prediction", ["x0", "v"])
def test_objectives_of_x0_and_v_networks(schedule, gaussian, prediction):
    """The unweighted error on x_0 (or v) is the eps error times error_weight; the bound does not depend on the
    reading (same mu_theta)."""
    x0, eps, t, x_t = _draws(schedule)
    eps_model = _noisy_eps_model(gaussian)
    net = lambda x, tt: md.from_eps(eps_model(x, tt), x, tt, schedule, prediction)  # noqa: E731
    kw = dict(t=t, noise=eps, reduction="none")
    simple = md.objective(net, x0, schedule, prediction, "simple", **kw)
    eps_err = ((eps_model(x_t, t) - eps) ** 2).mean(1)
    assert torch.allclose(simple, md.error_weight(t, schedule, prediction) * eps_err, rtol=1e-6, atol=1e-12)
    bound = md.objective(net, x0, schedule, prediction, "bound", **kw)
    assert torch.allclose(bound, md.objective(eps_model, x0, schedule, "eps", "bound", **kw), rtol=1e-6)
    wrapped = md.as_eps_model(net, schedule, prediction)
    assert torch.allclose(wrapped(x_t, t), eps_model(x_t, t), atol=1e-9)


def test_learned_variance_bound_is_the_gaussian_kl_and_the_decoder(schedule, gaussian):
    x0, eps, t, x_t = _draws(schedule)
    eps_model = _noisy_eps_model(gaussian)
    g = torch.Generator().manual_seed(4)
    log_var = torch.randn(len(t), 2, generator=g, dtype=torch.float64) - 6

    def net(x, tt):
        return torch.cat([eps_model(x, tt), log_var], 1)

    got = md.objective(net, x0, schedule, "eps", "bound", t=t, noise=eps, reduction="none", variance="learned")
    mu_q, var_q = md.q_posterior(x0, x_t, t, schedule)
    mu_theta = md.p_mean(x_t, eps_model(x_t, t), t, schedule)
    first = t == 1
    kl = md.normal_kl(mu_q[~first], var_q[~first], mu_theta[~first], log_var[~first].exp()).mean(1)
    assert torch.allclose(got[~first], kl, rtol=1e-9)
    dec = -torch.distributions.Normal(mu_theta[first], (0.5 * log_var[first]).exp()).log_prob(x0[first]).mean(1)
    assert first.any() and torch.allclose(got[first], dec, rtol=1e-9)
    # the fixed-variance bound is the same KL's mean term with sigma^2 = beta_t
    assert torch.allclose(md.objective(eps_model, x0, schedule, "eps", "bound", t=t, noise=eps, reduction="none"),
                          ((mu_q - mu_theta) ** 2 / (2 * schedule.betas[t][:, None])).mean(1), rtol=1e-9)


def test_sampling_with_a_learned_variance_equal_to_tilde_beta_is_ancestral_sampling(schedule, gaussian):
    """eta='learned' with log sigma^2 = log tilde-beta_t (t > 1) is the eta = 1 sampler, draw for draw."""
    tilde = (schedule.betas * (1 - torch.cat([schedule.alpha_bars[:1], schedule.alpha_bars[:-1]]))
             / (1 - schedule.alpha_bars).clamp(min=1e-300))
    tilde[1] = tilde[2]                                             # unused: no noise on the last step

    def net(x, tt):
        return torch.cat([gaussian(x, tt), tilde[tt].log()[:, None].expand_as(x)], 1)

    x_T = torch.randn(300, 2, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    tau = md.timesteps(schedule.T, schedule.T)
    a = md.sample(net, x_T, schedule, tau, eta="learned", generator=torch.Generator().manual_seed(6))
    b = md.sample(gaussian, x_T, schedule, tau, eta=1.0, generator=torch.Generator().manual_seed(6))
    assert torch.allclose(a, b, atol=1e-9)
    with pytest.raises(ValueError, match="all T steps"):
        md.sample(net, x_T, schedule, md.timesteps(schedule.T, 10), eta="learned")
    with pytest.raises(ValueError, match="twice x's channels"):
        md.sample(gaussian, x_T, schedule, tau, eta="learned")


def test_bad_arguments(schedule, gaussian):
    x0, eps, t, x_t = _draws(schedule, n=8)
    with pytest.raises(ValueError, match="prediction"):
        md.to_eps(eps, x_t, t, schedule, "x_start")
    with pytest.raises(ValueError, match="prediction"):
        md.objective(gaussian, x0, schedule, "score")
    with pytest.raises(ValueError, match="variance"):
        md.objective(gaussian, x0, schedule, "eps", "bound", variance="small")
    with pytest.raises(ValueError, match="weighting must be 'bound'"):
        md.objective(gaussian, x0, schedule, "eps", "simple", variance="learned")
    with pytest.raises(ValueError, match="twice x's channels"):
        md.objective(gaussian, x0, schedule, "eps", "bound", variance="learned")
    with pytest.raises(TypeError, match="output"):
        md.to_eps(t, x_t, t, schedule, "v")


@pytest.mark.parametrize("kw", [dict(prediction="x0"), dict(prediction="v"),
                                dict(prediction="mu", weighting="bound", variance="learned")])
def test_train_toy_runs_each_new_row(schedule, kw):
    run = md.train_toy("eight_gaussians", steps=30, seed=0, progress=False, **kw)
    assert all(math.isfinite(v) for v in run.losses) and run.losses[-1] < run.losses[0]
    learned = kw.get("variance") == "learned"
    net = md.as_eps_model(run.model, schedule, kw["prediction"], learned)
    x = md.sample(net, torch.randn(16, 2), schedule, md.timesteps(schedule.T, schedule.T),
                  eta="learned" if learned else 1.0, generator=torch.Generator().manual_seed(0))
    assert x.shape == (16, 2)
