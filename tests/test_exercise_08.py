"""Exercise 08 (beyond sampling): what the generic grading tests (tests/test_grading.py) do not cover for the two
questions that need more than transcription.  repaint_jump's reference against the forward process taken one step of
DDPM eq. 2 at a time (Monte Carlo) and against md.inpaint's own jump; bits_left_when_sharp's reference against an
independent closed form of the exact model's x0_hat, its cases' margins (no distortion within rounding of the level),
the detour case really leaving and re-entering the level, and the solution notebook's data cell building the
measurement's case."""

from pathlib import Path

import pytest
import torch

import minddim as md
from minddim import grading
from minddim.grading.keys import ex08_beyond_sampling as key

ROOT = Path(__file__).resolve().parents[1]


def test_the_questions_are_registered_with_the_solution_notebooks_points():
    assert grading.questions(ROOT / "solutions" / "08_beyond_sampling.py") == [
        ("replace_known", 1), ("progressive_rate", 1), ("inpaint_step", 1), ("repaint_jump", 2),
        ("bits_left_when_sharp", 2)]


# -- repaint_jump ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("t,t_up", [(0, 7), (40, 80), (300, 301), (900, 1000)])
def test_the_jump_is_the_forward_process_taken_one_step_at_a_time(t, t_up):
    """x_t fixed, t_up - t steps of q(x_s | x_{s-1}) (md.q_step, DDPM eq. 2) with independent noise: 40,000 draws
    have the reference's mean sqrt(ab_up / ab_t) x_t and variance 1 - ab_up / ab_t (within 5 standard errors)."""
    schedule = md.Schedule.linear()
    g = torch.Generator().manual_seed(t)
    n = 40_000
    x_t = torch.full((n, 1), 1.3, dtype=torch.float64)
    x = x_t.clone()
    for s in range(t + 1, t_up + 1):
        x = md.q_step(x, s, schedule, torch.randn(x.shape, generator=g, dtype=torch.float64))
    ref = grading.CHECKS["repaint_jump"].reference
    tt, tu = torch.full((n,), t), torch.full((n,), t_up)
    mean = ref(x_t[:1], tt[:1], tu[:1], schedule, torch.zeros(1, 1, dtype=torch.float64))     # noise 0: the mean
    sd = ref(torch.zeros(1, 1, dtype=torch.float64), tt[:1], tu[:1], schedule, torch.ones(1, 1, dtype=torch.float64))
    var = float(sd) ** 2
    assert abs(float(x.mean()) - float(mean)) < 5 * (var / n) ** 0.5
    assert abs(float(x.var()) / var - 1) < 5 * (2 / n) ** 0.5
    ab = schedule.alpha_bars
    assert var == pytest.approx(float(1 - ab[t_up] / ab[t]), rel=1e-12)


def test_the_jump_is_the_one_md_inpaint_takes():
    """md.inpaint on an all-zero mask with a model that predicts eps = 0 and eta = 0: each down move is deterministic
    (x -> sqrt(ab_prev / ab_t) x), so a walk with one resampling jump ends at the product of the down factors times
    what the jump made of x; its one random draw (after x_T) is the jump's noise, which the reference reproduces."""
    schedule = md.Schedule.linear()
    tau = torch.tensor([100, 200, 300])
    walk = md.repaint_walk(3, resample=2, jump=2)            # positions of tau (tau_0 = 0), with jumps back up
    assert any(j > i for i, j in zip(walk[:-1], walk[1:]))   # moves back up, each of 100 time steps (100 -> 200 ...)
    g = torch.Generator().manual_seed(0)
    x0 = torch.zeros(2, 3, dtype=torch.float64)
    out = md.inpaint(lambda x, t: torch.zeros_like(x), x0, torch.zeros(2, 3), schedule, tau, eta=0.0, resample=2,
                     jump=2, generator=g)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(x0.shape, dtype=x0.dtype, generator=g)
    levels = [0] + tau.tolist()
    ab = schedule.alpha_bars
    ref = grading.CHECKS["repaint_jump"].reference
    for i, j in zip(walk[:-1], walk[1:]):
        t, t_to = levels[i], levels[j]
        if j < i:
            x = (ab[t_to] / ab[t]).sqrt() * x
        else:
            x = ref(x, torch.full((2,), t), torch.full((2,), t_to), schedule,
                    torch.randn(x.shape, dtype=x.dtype, generator=g))
    torch.testing.assert_close(out, x, rtol=1e-12, atol=1e-12)


# -- bits_left_when_sharp -------------------------------------------------------------------------------------
def _posterior_mean(model, x_t, t, schedule):
    """E[x0 | x_t] for x0 ~ N(m, C), written out: m + sqrt(ab) C (ab C + (1 - ab) I)^-1 (x_t - sqrt(ab) m)."""
    ab = float(schedule.alpha_bars[t])
    m, C = model.mean, model.cov
    S = ab * C + (1 - ab) * torch.eye(len(m), dtype=torch.float64)
    return m + (ab ** 0.5 * C @ torch.linalg.solve(S, (x_t - ab ** 0.5 * m).T)).T


def test_the_distortion_is_the_rmse_of_the_exact_posterior_mean_in_gray_levels():
    model, x0, noise, terms = key.four_pixel_measurement()
    D = key._distortion(model, x0, noise, md.Schedule.linear())
    schedule = md.Schedule.linear()
    for t in (1, 2, 5, 30, 400, 1000):
        ab = schedule.alpha_bars[t]
        x_t = ab.sqrt() * x0 + (1 - ab).sqrt() * noise
        want = (127.5 * (_posterior_mean(model, x_t, t, schedule) - x0)).square().mean(1).sqrt()
        torch.testing.assert_close(D[:, t - 1], want, rtol=1e-8, atol=1e-8)


def test_the_share_is_what_the_terms_below_t_star_add_up_to():
    spec = grading.CHECKS["bits_left_when_sharp"]
    for case in spec.cases():
        t_star, share = spec.reference(**case.inputs)
        terms = case.inputs["terms"].double()
        want = torch.stack([terms[i, :int(k)].sum() / terms[i].sum() for i, k in enumerate(t_star)])
        torch.testing.assert_close(share.double(), want, rtol=1e-6, atol=1e-9)
        assert t_star.dtype == torch.long


def test_no_case_has_a_distortion_within_rounding_of_its_level():
    """Correct answers computed in another order (a loop over t, float32) cannot flip t*: every distortion of every
    case is at least 0.4% away from the level."""
    for case in grading.CHECKS["bits_left_when_sharp"].cases():
        i = case.inputs
        D = key._distortion(i["model"], i["x0"].double(), i["noise"].double(), i["schedule"])
        assert float(((D - i["level"]).abs() / i["level"]).min()) > 4e-3, case.label


def test_the_detour_case_leaves_the_level_and_comes_back():
    """In the detour case x0_hat is under the level at some t above the detour, over it in the detour, under it
    below: 'stays within' and 'first time under' differ there, which the named mistake needs."""
    case = [c for c in grading.CHECKS["bits_left_when_sharp"].cases() if "off by 12" in c.label][0].inputs
    D = key._distortion(case["model"], case["x0"], case["noise"], case["schedule"])
    below = D < case["level"]
    assert below[:, 2:4].logical_not().all() and below[:, :2].all() and below[:, 4:].any(1).all()


def test_the_measurement_answers_the_prompts_question():
    """The prompt asks whether this exact model's picture is sharp earlier or later than MNIST's (t = 10, 75.8% of
    the code to come) and whether more or less of its code is to come: later (t* <= 4, median 1) and less (below
    60% for every image)."""
    model, x0, noise, terms = key.four_pixel_measurement()
    t_star, share = grading.CHECKS["bits_left_when_sharp"].reference(model, x0, noise, terms, md.Schedule.linear(), 2.0)
    assert int(t_star.max()) <= 4 and float(t_star.double().median()) == 1
    assert float(share.max()) < 0.6


def test_the_solution_notebooks_data_cell_builds_the_measurements_case():
    src = (ROOT / "solutions" / "08_beyond_sampling.py").read_text()
    cell = [c for c in src.split("# %%") if "cov4 = " in c][0].split("\n", 1)[1]
    ns = {"torch": torch, "md": md, "schedule": md.Schedule.linear()}
    exec(cell, ns)
    model, x0, noise, terms = key.four_pixel_measurement()
    assert torch.equal(ns["x4"], x0) and torch.equal(ns["noise4"], noise) and torch.equal(ns["terms4"], terms)
    assert torch.equal(ns["gauss4"].cov, model.cov)
