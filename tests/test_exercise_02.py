"""Exercise 02's derivation question, variance_choice_cost: its reference against the package's own bound
(md.vlb_terms with the exact model of one-point data) and against a KL by quadrature (the generic checks are in
test_grading.py)."""

import math

import pytest
import torch
from scipy import integrate, stats

import minddim as md
from minddim import grading
from minddim.grading.keys.ex02_posterior_and_bound import variance_choice_cost

SPEC = grading.CHECKS["variance_choice_cost"]


def _one_point_model(point, schedule):
    """The exact eps-model for data that is the single point ``point``: E[eps | x_t] = (x_t - sqrt(ab) x_0) / sqrt(1 - ab)."""
    def model(x_t, t):
        ab = schedule.alpha_bars[t].to(x_t.dtype).view(-1, *[1] * (x_t.dim() - 1))
        return (x_t - ab.sqrt() * point) / (1 - ab).sqrt()
    return model


@pytest.mark.parametrize("schedule", [md.Schedule.linear(100), md.Schedule.linear(10, 1e-3, 0.3),
                                      md.Schedule.cosine(50)], ids=["linear T=100", "short T=10", "cosine T=50"])
def test_the_reference_is_the_bounds_middle_terms_beta_minus_beta_tilde(schedule):
    """md.vlb_terms on one-point data with its exact model: the middle columns L_1..L_{T-1} with sigma^2 = beta,
    minus those with tilde-beta (zero), per dimension, equal the reference to 1e-9."""
    point = torch.tensor([0.3, -0.8, 0.5], dtype=torch.float64)
    x0 = point.expand(4, 3).clone()
    model = _one_point_model(point, schedule)
    terms = {v: md.vlb_terms(model, x0, schedule, variance=v, decoder="gaussian",
                             generator=torch.Generator().manual_seed(0)) for v in ("beta", "beta_tilde")}
    assert terms["beta_tilde"][:, 1:-1].abs().max() < 1e-9          # the exact mean and variance: KL = 0
    cost = (terms["beta"][:, 1:-1] - terms["beta_tilde"][:, 1:-1]).sum(1) / 3
    torch.testing.assert_close(cost, torch.full((4,), variance_choice_cost(schedule), dtype=torch.float64),
                               rtol=1e-9, atol=1e-9)


def test_each_term_is_the_kl_by_quadrature():
    """KL(N(0, tilde-beta_t) || N(0, beta_t)) integrated numerically at a few t of the short schedule, summed with the
    closed form of the others, gives the reference (the closed form of each term checked independently)."""
    s = md.Schedule.linear(10, 1e-3, 0.3)
    total = 0.0
    for t in range(2, s.T + 1):
        q = stats.norm(0, math.sqrt(s.beta_tildes[t].item()))
        p = stats.norm(0, math.sqrt(s.betas[t].item()))
        lim = 12 * q.std()
        kl, _ = integrate.quad(lambda x: q.pdf(x) * (q.logpdf(x) - p.logpdf(x)), -lim, lim, epsabs=1e-12, epsrel=1e-10)
        total += kl
    assert math.isclose(total, variance_choice_cost(s), rel_tol=1e-7)


def test_the_values_the_prompt_invites_comparing():
    """DDPM's linear schedule costs 0.337 nats per dimension, the cosine 0.300; both positive and finite."""
    assert math.isclose(variance_choice_cost(md.Schedule.linear()), 0.3372, abs_tol=5e-5)
    assert math.isclose(variance_choice_cost(md.Schedule.cosine()), 0.2997, abs_tol=5e-5)


def test_the_first_case_tells_every_mistake_but_the_range_end_apart():
    """On the first case (T = 1000) the reference and the named mistakes differ by more than the check's tolerance,
    except the range that stops before t = T, whose missing last term is ~1e-13 there; it is named on the short
    schedule, where it differs from every other mistake."""
    def apart(a, b):
        return not math.isclose(a, b, rel_tol=SPEC.rtol, abs_tol=SPEC.atol)
    for k, case in enumerate(SPEC.cases()[:3:2]):
        values = [SPEC.reference(**case.inputs)] + [m(**case.inputs) for m in SPEC.mistakes.values()]
        if k == 0:
            values = values[:-1]
        assert all(apart(a, b) for i, a in enumerate(values) for b in values[i + 1:]), (case.label, values)
