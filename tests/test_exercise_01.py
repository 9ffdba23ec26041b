"""Exercise 01's derivation question, decorrelation_time: its reference against a Monte Carlo correlation, the
crossing clear of rounding, and its named mistakes told apart (the generic checks are in test_grading.py)."""

import math

import pytest
import torch

import minddim as md
from minddim import grading
from minddim.grading.keys.ex01_forward_process import _corr, decorrelation_time

SPEC = grading.CHECKS["decorrelation_time"]


@pytest.mark.parametrize("var", [0.25, 1.0, 4.0])
def test_the_closed_form_correlation_matches_monte_carlo(var):
    """corr(x_0, x_t) = sqrt(ab var / (ab var + 1 - ab)) against the sample correlation of 200,000 draws of
    x_0 ~ N(0.7, var) and x_t from md.q_sample, at several t: within 4 standard errors, (1 - rho^2) / sqrt(n)."""
    schedule, n = md.Schedule.linear(), 200_000
    g = torch.Generator().manual_seed(0)
    x0 = 0.7 + math.sqrt(var) * torch.randn(n, 1, generator=g, dtype=torch.float64)
    closed = _corr(schedule.alpha_bars, var)
    for t in (1, 100, 300, 500, 700):
        x_t = md.q_sample(x0, t, schedule, generator=g)
        rho = torch.corrcoef(torch.cat([x0, x_t], 1).T)[0, 1].item()
        se = (1 - closed[t].item() ** 2) / math.sqrt(n)
        assert abs(rho - closed[t].item()) < 4 * se + 1e-12, (t, rho, closed[t].item())


def test_the_correlation_starts_at_one_and_falls():
    for schedule in (md.Schedule.linear(), md.Schedule.cosine(), md.Schedule.linear(10, 1e-3, 0.3)):
        for var in (0.25, 1.0, 4.0):
            c = _corr(schedule.alpha_bars, var)
            assert c[0].item() == 1.0 and (c[1:] < c[:-1]).all()


def test_each_crossing_is_clear_of_rounding():
    """At the answer t, corr[t - 1] >= level > corr[t] with room to spare (1e-6), so float32 or float64 answers
    and a < against a <= cannot disagree; where the answer is None, corr[T] is well above level."""
    for case in SPEC.cases():
        s, var, level = case.inputs["schedule"], case.inputs["var"], case.inputs["level"]
        c, t = _corr(s.alpha_bars, var), decorrelation_time(**case.inputs)
        if t is None:
            assert c[-1].item() > level * 1.5, case.label
        else:
            assert c[t - 1].item() - level > 1e-6 and level - c[t].item() > 1e-6, case.label


def test_the_first_case_tells_every_mistake_apart():
    """On the first case the reference and every named mistake give different answers, so a learner's mistake is
    named on the first case it fails (no hint shadowed by an earlier one)."""
    case = SPEC.cases()[0]
    answers = [SPEC.reference(**case.inputs)] + [m(**case.inputs) for m in SPEC.mistakes.values()]
    assert len(set(answers)) == len(answers), answers


def test_the_prompts_example_differs_with_the_data_variance():
    """The prompt asks whether x_t stays recognizable longer for data of variance 4 or 0.25 (linear, level 0.5):
    the wider data keeps its correlation longer."""
    s = md.Schedule.linear()
    assert decorrelation_time(s, 4.0, 0.5) > decorrelation_time(s, 0.25, 0.5)


def test_an_answer_that_returns_a_tensor_time_passes():
    def as_tensor(schedule, var, level):
        ab = schedule.alpha_bars
        below = ((ab * var / (ab * var + 1 - ab)).sqrt() < level).nonzero()
        return below[0, 0] if len(below) else None
    assert grading.run_check("decorrelation_time", as_tensor).passed
