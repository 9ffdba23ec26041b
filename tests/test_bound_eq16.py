"""DDPM eq. 16, the bound written with the true reverse steps q(x_{t-1} | x_t) plus H(x_0), for data on finitely many
points: the reverse step against Bayes' rule on the marginals, and the whole of eq. 16 against eq. 5 (md.vlb) by Monte
Carlo, for imperfect models."""

import math

import pytest
import torch

import minddim as md

LEVELS = torch.tensor([[64, 192], [192, 64], [192, 192]], dtype=torch.float64)
POINTS = LEVELS / 127.5 - 1                                   # three 2-pixel images on the 8-bit grid
PROBS = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)


def log_marginal(x, s, schedule, points=POINTS, probs=PROBS):
    """log q(x_s) = log sum_k p_k N(x; sqrt(ab_s) x_k, (1 - ab_s) I), written out independently."""
    ab = schedule.alpha_bars[s]
    d = x[:, None, :] - ab.sqrt() * points[None]
    D = points.shape[1]
    log_n = -d.square().sum(-1) / (2 * (1 - ab)) - 0.5 * D * torch.log(2 * math.pi * (1 - ab))
    return torch.logsumexp(probs.log() + log_n, 1)


def test_data_entropy_closed_forms():
    assert md.data_entropy(torch.full((8,), 1 / 8, dtype=torch.float64)) == pytest.approx(math.log(8), abs=1e-14)
    assert md.data_entropy(torch.ones(1, dtype=torch.float64)) == 0.0
    with pytest.raises(ValueError, match="probs"):
        md.data_entropy(torch.tensor([0.5, 0.4], dtype=torch.float64))


@pytest.mark.parametrize("t", [2, 50, 400, 1000])
def test_reverse_log_prob_is_bayes_rule_on_the_marginals(schedule, gen, t):
    """q(x_{t-1} | x_t) = q(x_t | x_{t-1}) q(x_{t-1}) / q(x_t) (DDPM eq. 24), each factor in closed form."""
    x0 = POINTS[torch.multinomial(PROBS, 500, replacement=True, generator=gen)]
    x_prev = md.q_sample(x0, t - 1, schedule, generator=gen)
    x_t = md.q_step(x_prev, t, schedule, generator=gen)
    beta = schedule.betas[t]
    log_step = -((x_t - (1 - beta).sqrt() * x_prev).square().sum(1) / (2 * beta) + torch.log(2 * math.pi * beta))
    bayes = log_step + log_marginal(x_prev, t - 1, schedule) - log_marginal(x_t, t, schedule)
    ours = md.reverse_log_prob(x_prev, x_t, t, POINTS, PROBS, schedule)
    assert torch.allclose(ours, bayes, rtol=0, atol=1e-8 * max(1.0, bayes.abs().max().item()))


def test_data_posterior_is_bayes_rule(schedule, gen):
    x_t = torch.randn(100, 2, generator=gen, dtype=torch.float64)
    t = 300
    ab = schedule.alpha_bars[t]
    D = -((x_t[:, None] - ab.sqrt() * POINTS).square().sum(-1)) / (2 * (1 - ab)) - torch.log(2 * math.pi * (1 - ab))
    expected = PROBS.log() + D - log_marginal(x_t, t, schedule)[:, None]
    assert torch.allclose(md.data_posterior(x_t, t, POINTS, PROBS, schedule), expected, atol=1e-10)


def _exact(points, probs, schedule):
    """E[eps | x_t] for data on the points: the Bayes-optimal mean."""
    def model(x_t, t):
        t = int(t[0])
        ab = schedule.alpha_bars[t]
        x0_hat = md.data_posterior(x_t, t, points, probs, schedule).exp() @ points
        return (x_t - ab.sqrt() * x0_hat) / (1 - ab).sqrt()
    return model


@pytest.fixture(scope="module")
def short():
    return md.Schedule.linear(T=40, beta_1=1e-4, beta_T=0.3)         # alpha_bar_T ~ 0.002: x_T nearly noise


@pytest.mark.parametrize("which", ["exact mean, perturbed", "moment-matched Gaussian"])
def test_eq16_plus_entropy_equals_the_bound_of_eq5(short, which):
    """E_q[L] of eq. 5 (md.vlb, averaged over the data) = eq. 16's KLs + H(x_0), for imperfect models, within
    4.5 standard errors of the difference of the two independent estimates; each t = 1 KL is >= 0 exactly, and the
    per-step difference eq. 5 - eq. 16 is the same for both models (it does not involve p_theta)."""
    exact = _exact(POINTS, PROBS, short)
    if which == "exact mean, perturbed":
        model = lambda x_t, t: 1.15 * exact(x_t, t) + 0.05                           # noqa: E731
    else:
        m = PROBS @ POINTS
        model = md.GaussianDenoiser(m, ((POINTS - m).T * PROBS) @ (POINTS - m), short)
    n = 20_000
    g = torch.Generator().manual_seed(3)
    x0 = POINTS[torch.multinomial(PROBS, n, replacement=True, generator=g)]
    L5 = md.vlb_terms(model, x0, short, decoder="discretized", variance="beta", generator=g)
    L16 = md.marginal_vlb_terms(model, POINTS, PROBS, n, short, variance="beta", generator=g)
    assert L16.shape == (n, short.T + 1)
    H = md.data_entropy(PROBS)
    eq5, eq16 = L5.sum(1), L16.sum(1) + H
    se = math.sqrt(eq5.var().item() / n + eq16.var().item() / n)
    assert abs(eq5.mean().item() - eq16.mean().item()) < 4.5 * se, (eq5.mean(), eq16.mean(), se)
    assert eq16.mean().item() - H > 0.5                               # imperfect: well above the floor H(x_0)
    assert (L16[:, 0] >= -1e-12).all()                                # the discrete KL at t = 1, given x_1
    means, ses = L16.mean(0), L16.std(0) / math.sqrt(n)
    assert (means > -4.5 * ses).all()                                 # every KL's estimate is >= 0 within its error


def test_difference_of_the_two_forms_does_not_involve_the_model(short):
    """Term by term, eq. 5 minus eq. 16 is I(x_0; x_{t-1} | x_t) (t >= 2): the same for two different models."""
    exact = _exact(POINTS, PROBS, short)
    models = (exact, lambda x_t, t: 0.8 * exact(x_t, t) - 0.1)
    n, diffs = 20_000, []
    for seed, model in enumerate(models):
        g = torch.Generator().manual_seed(10 + seed)
        x0 = POINTS[torch.multinomial(PROBS, n, replacement=True, generator=g)]
        L5 = md.vlb_terms(model, x0, short, decoder="discretized", variance="beta", generator=g)
        L16 = md.marginal_vlb_terms(model, POINTS, PROBS, n, short, variance="beta", generator=g)
        d = L5[:, 1:].sum(1) - L16[:, 1:].sum(1)                      # t >= 2 and the prior: model-free
        diffs.append((d.mean().item(), d.var().item() / n))
    (a, va), (b, vb) = diffs
    assert abs(a - b) < 4.5 * math.sqrt(va + vb), (a, b, math.sqrt(va + vb))


def test_a_single_point_makes_eq16_equal_eq5_term_by_term(short):
    """With one data point q(x_{t-1} | x_t) = q(x_{t-1} | x_t, x_0) and H(x_0) = 0: the columns agree in mean."""
    point, prob = POINTS[:1], torch.ones(1, dtype=torch.float64)
    model = lambda x_t, t: torch.full_like(x_t, 0.3)                   # noqa: E731
    n = 20_000
    g = torch.Generator().manual_seed(5)
    L5 = md.vlb_terms(model, point.expand(n, 2).clone(), short, decoder="discretized", variance="beta", generator=g)
    L16 = md.marginal_vlb_terms(model, point, prob, n, short, variance="beta", generator=g)
    se = (L5.var(0) / n + L16.var(0) / n).sqrt().clamp(min=1e-12)
    assert ((L5.mean(0) - L16.mean(0)).abs() < 4.5 * se + 1e-9).all()


def test_bad_input(schedule):
    model = lambda x_t, t: x_t                                         # noqa: E731
    with pytest.raises(ValueError, match="8-bit grid"):
        md.marginal_vlb_terms(model, POINTS + 0.001, PROBS, 10, schedule)
    with pytest.raises(ValueError, match="probs"):
        md.marginal_vlb_terms(model, POINTS, PROBS * 2, 10, schedule)
    with pytest.raises(ValueError, match="probs"):
        md.marginal_vlb_terms(model, POINTS, PROBS[:2] / PROBS[:2].sum(), 10, schedule)
    with pytest.raises(ValueError, match="points"):
        md.marginal_vlb_terms(model, POINTS[0], PROBS, 10, schedule)
    with pytest.raises(TypeError, match="n"):
        md.marginal_vlb_terms(model, POINTS, PROBS, 2.5, schedule)
    with pytest.raises(ValueError, match="t"):
        md.reverse_log_prob(torch.zeros(3, 2, dtype=torch.float64), torch.zeros(3, 2, dtype=torch.float64), 1,
                            POINTS, PROBS, schedule)
    with pytest.raises(ValueError, match="x_t"):
        md.data_posterior(torch.zeros(3, 3, dtype=torch.float64), 5, POINTS, PROBS, schedule)
