"""Exercise 09 (guidance): the answer key's references against the package's guidance and exact models, correct
answers written another way (in float32) passing the checks' tolerances, the closed form of the last question
against exact scores, and its bad input.  The generic properties (the reference passes, every listed mistake is
rejected with its hint, a stub is "not implemented yet", the hint ladder) are tested for every question, these
included, in tests/test_grading.py."""

import math

import pytest
import torch

import minddim as md
from minddim import grading
from minddim.grading.keys import ex09_guidance as answers_guidance
from minddim.grading.runner import _clone

QUESTIONS = ("cfg_eps", "classifier_guided_eps", "log_class_posterior", "cfg_tilted_gaussian")


@pytest.fixture(scope="module")
def schedule():
    return md.Schedule.linear()


@pytest.fixture(scope="module")
def mixture(schedule):
    """Three unequal classes in 2-D with full covariances (one class far from the others)."""
    weights = torch.tensor([0.6, 0.3, 0.1], dtype=torch.float64)
    means = torch.tensor([[1.5, 0.0], [-1.0, 1.0], [0.0, -2.0]], dtype=torch.float64)
    covs = torch.tensor([[[0.3, 0.1], [0.1, 0.2]], [[0.2, -0.05], [-0.05, 0.4]], [[0.1, 0.0], [0.0, 0.1]]],
                        dtype=torch.float64)
    return md.GaussianMixtureDenoiser(weights, means, covs, schedule)


def test_the_questions_are_registered_with_the_solution_notebooks_points():
    from pathlib import Path

    sol = Path(__file__).resolve().parents[1] / "solutions" / "09_guidance.py"
    assert grading.questions(sol) == [("cfg_eps", 1), ("classifier_guided_eps", 1), ("log_class_posterior", 1),
                                      ("cfg_tilted_gaussian", 3)]
    assert all(name in grading.CHECKS for name in QUESTIONS)


# -- the references are the package's guidance ----------------------------------------------------------------
@pytest.mark.parametrize("w", [-1.0, 0.0, 0.5, 3.0])
def test_the_cfg_reference_is_classifier_free_on_the_exact_conditional_model(w, mixture, schedule):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 2, generator=g, dtype=torch.float64)
    t = torch.tensor([1, 10, 200, 500, 800, 1000])
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    cond = mixture.conditional()
    got = grading.CHECKS["cfg_eps"].reference(cond(x, t, y), cond(x, t, 3), w)
    torch.testing.assert_close(got, md.classifier_free(cond, y, w)(x, t), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("scale", [0.5, 1.0, 4.0])
def test_the_classifier_guided_reference_is_classifier_guidance_with_the_exact_classifier(scale, mixture, schedule):
    """eps - s sqrt(1 - alpha-bar_t) grad log p(y | x_t) with the closed-form gradient is md.classifier_guidance with
    the exact classifier's logits differentiated by autograd; at s = 1 both are the exact class-conditional model."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(6, 2, generator=g, dtype=torch.float64)
    t = torch.tensor([1, 10, 200, 500, 800, 1000])
    y = torch.tensor([2, 1, 0, 2, 1, 0])
    got = grading.CHECKS["classifier_guided_eps"].reference(mixture(x, t), mixture.class_posterior_grad(x, t, y), t,
                                                            schedule, scale)
    want = md.classifier_guidance(mixture, mixture.log_class_posterior, y, scale, schedule)(x, t)
    torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-10)
    if scale == 1.0:
        torch.testing.assert_close(got, mixture.class_eps(x, t, y), rtol=1e-9, atol=1e-10)


def test_the_class_posterior_reference_is_bayes_rule_over_the_noised_components(mixture, schedule):
    """log pi_k + log N_k(x_t) - log q(x_t), each density from the package's exact single-Gaussian model; its
    autograd gradient is the closed-form class_posterior_grad that question 2 takes as grad_log_p."""
    g = torch.Generator().manual_seed(2)
    x = torch.randn(5, 2, generator=g, dtype=torch.float64)
    t = torch.tensor([0, 1, 100, 600, 1000])
    got = grading.CHECKS["log_class_posterior"].reference(x, t, schedule, mixture.weights, mixture.means,
                                                          mixture.covs)
    parts = torch.stack([mixture.weights[k].log() + md.GaussianDenoiser(mixture.means[k], mixture.covs[k],
                                                                        schedule).log_prob(x, t)
                         for k in range(3)], 1)
    torch.testing.assert_close(got, parts - mixture.log_prob(x, t)[:, None], rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(got.exp().sum(1), torch.ones(5, dtype=torch.float64))
    y = torch.tensor([0, 1, 2, 0, 1])
    xr = x.clone().requires_grad_(True)
    lp = grading.CHECKS["log_class_posterior"].reference(xr, t, schedule, mixture.weights, mixture.means,
                                                         mixture.covs)
    (grad,) = torch.autograd.grad(lp.gather(1, y[:, None]).sum(), xr)
    torch.testing.assert_close(grad, mixture.class_posterior_grad(x, t, y), rtol=1e-9, atol=1e-10)


# -- correct answers written another way pass (the tolerances are not too tight) ----------------------------------
def _log_class_posterior_float32_by_hand(x_t, t, schedule, weights, means, covs):
    ab = schedule.alpha_bars[t].to(x_t.dtype)[:, None, None, None]
    D = x_t.shape[1]
    cov = ab * covs + (1 - ab) * torch.eye(D, dtype=x_t.dtype)
    diff = x_t[:, None, :] - ab[..., 0].sqrt() * means
    maha = torch.einsum("bki,bkij,bkj->bk", diff, torch.linalg.inv(cov), diff)
    log_joint = weights.log() - 0.5 * (maha + torch.logdet(cov) + D * math.log(2 * math.pi))
    return log_joint - torch.logsumexp(log_joint, 1, keepdim=True)


def _classifier_guided_float32(eps, grad_log_p, t, schedule, scale):
    sigma = torch.sqrt(1 - schedule.alpha_bars.float()[t]).to(eps.dtype)
    return eps - scale * sigma.view(-1, *[1] * (eps.dim() - 1)) * grad_log_p


def _tilted_by_solves(mean_c, cov_c, mean_u, cov_u, w):
    precision = (1 + w) * torch.linalg.inv(cov_c) - w * torch.linalg.inv(cov_u)
    linear = (1 + w) * torch.linalg.solve(cov_c, mean_c) - w * torch.linalg.solve(cov_u, mean_u)
    return torch.linalg.solve(precision, linear), torch.linalg.inv(precision)


@pytest.mark.parametrize("name, fn", [
    ("cfg_eps", lambda eps_cond, eps_uncond, w: eps_cond + w * (eps_cond - eps_uncond)),
    ("classifier_guided_eps", _classifier_guided_float32),
    ("log_class_posterior", _log_class_posterior_float32_by_hand),
    ("cfg_tilted_gaussian", _tilted_by_solves),
])
def test_a_correct_answer_written_another_way_passes(name, fn):
    v = grading.run_check(name, fn)
    assert v.passed, v.line()


def test_the_float32_class_posterior_is_well_inside_the_tolerance():
    """The by-hand float32 answer stays within a tenth of the check's tolerance on every case."""
    spec = grading.CHECKS["log_class_posterior"]
    for case in spec.cases():
        want = spec.reference(**_clone(case.inputs)).double()
        got = _log_class_posterior_float32_by_hand(**_clone(case.inputs)).double()
        assert ((got - want).abs() / (spec.atol + spec.rtol * want.abs())).max() < 0.1, case.label


def test_each_mistake_is_caught_on_a_case_where_no_other_mistake_gives_its_output():
    """Each listed mistake fails on some case, and on the first case where it fails no other mistake (and not the
    reference) gives the same output, so the hint named is the mistake made, whatever the order of the list. All
    but one fail on the first case; normalising after exponentiating fails only where float32 underflows."""
    from minddim.grading.runner import _compare

    for name in QUESTIONS:
        spec = grading.CHECKS[name]
        cases = spec.cases()
        late = []
        for hint, mistake in spec.mistakes.items():
            for k, case in enumerate(cases):
                ref = spec.reference(**_clone(case.inputs))
                out = mistake(**_clone(case.inputs))
                if _compare(ref, out, spec) is not None:
                    break
            else:
                raise AssertionError(f"{name}: the mistake {hint!r} passes every case")
            late += [hint] if k else []
            for other_hint, other in spec.mistakes.items():
                if other_hint != hint:
                    assert _compare(out, other(**_clone(case.inputs)), spec) is not None, (name, hint, other_hint)
        assert late == ([] if name != "log_class_posterior" else [h for h in spec.mistakes if "exponentiating" in h])


# -- the tilted Gaussian of question 4 ------------------------------------------------------------------------------
def _gaussian(mean, cov):
    return md.GaussianDenoiser(mean, cov, md.Schedule.linear(10))


@pytest.mark.parametrize("w", [-1.0, 0.0, 0.7, 2.0, 6.5])
def test_the_tilted_gaussians_score_is_the_guided_score_at_t_0(w):
    """grad log N(x; mean, cov) = (1 + w) grad log p(x | y) - w grad log p(x) at random points, with the package's
    exact scores at t = 0: the tilt p(x | y)^(1 + w) p(x)^(-w) is that Gaussian (a quadratic's gradient pins it)."""
    g = torch.Generator().manual_seed(3)
    mean_c, mean_u = torch.tensor([1.0, -0.5], dtype=torch.float64), torch.tensor([0.2, 0.3], dtype=torch.float64)
    cov_c = torch.tensor([[0.3, 0.1], [0.1, 0.2]], dtype=torch.float64)
    cov_u = cov_c + torch.tensor([[0.8, -0.2], [-0.2, 0.5]], dtype=torch.float64)
    mean, cov = answers_guidance.cfg_tilted_gaussian(mean_c, cov_c, mean_u, cov_u, w)
    x = 2 * torch.randn(7, 2, generator=g, dtype=torch.float64)
    guided = (1 + w) * _gaussian(mean_c, cov_c).score(x, 0) - w * _gaussian(mean_u, cov_u).score(x, 0)
    torch.testing.assert_close(_gaussian(mean, cov).score(x, 0), guided, rtol=1e-10, atol=1e-10)


def test_guidance_shrinks_the_isotropic_class_and_pushes_its_mean_away_from_the_data():
    """A class N(m, s^2 I) inside data N(0, S^2 I), s < S: the variance falls and the mean moves beyond m as w grows,
    as question 4's text says; in closed form 1 / var = (1 + w) / s^2 - w / S^2 and mean = var (1 + w) m / s^2."""
    m, s2, S2 = torch.tensor([2.0, 0.0], dtype=torch.float64), 0.25, 1.0
    eye = torch.eye(2, dtype=torch.float64)
    prev_var, prev_norm = None, None
    for w in (0.0, 0.5, 1.0, 3.0, 10.0):
        mean, cov = answers_guidance.cfg_tilted_gaussian(m, s2 * eye, torch.zeros(2, dtype=torch.float64), S2 * eye, w)
        var = 1 / ((1 + w) / s2 - w / S2)
        torch.testing.assert_close(cov, var * eye, rtol=1e-12, atol=1e-14)
        torch.testing.assert_close(mean, var * (1 + w) * m / s2, rtol=1e-12, atol=1e-14)
        if prev_var is not None:
            assert var < prev_var and float(mean.norm()) > prev_norm > 0
        prev_var, prev_norm = var, float(mean.norm())


def test_at_t_above_0_guidance_tilts_the_noisy_densities_which_are_not_the_noised_tilt():
    """The remark under question 4: for the isotropic example, the tilt of the noised class and data at t = 500 has a
    different variance from the noised tilt (alpha-bar_t var_w + 1 - alpha-bar_t)."""
    ab = float(md.Schedule.linear().alpha_bars[500])
    s2, S2, w = 0.25, 1.0, 3.0
    var_w = 1 / ((1 + w) / s2 - w / S2)
    noised_tilt = ab * var_w + 1 - ab
    tilt_of_noised = 1 / ((1 + w) / (ab * s2 + 1 - ab) - w / (ab * S2 + 1 - ab))
    assert abs(noised_tilt - tilt_of_noised) > 0.05 * noised_tilt


def test_the_tilted_gaussian_rejects_bad_input_naming_the_argument():
    eye = torch.eye(2, dtype=torch.float64)
    m = torch.zeros(2, dtype=torch.float64)
    f = answers_guidance.cfg_tilted_gaussian
    with pytest.raises(ValueError, match="mean_c"):
        f(torch.zeros(2, 2, dtype=torch.float64), eye, m, eye, 1.0)
    with pytest.raises(ValueError, match="cov_u"):
        f(m, eye, m, torch.eye(3, dtype=torch.float64), 1.0)
    with pytest.raises(ValueError, match="cov_c"):
        f(m, torch.tensor([[1.0, 2.0], [2.0, 1.0]], dtype=torch.float64), m, eye, 1.0)
    with pytest.raises(TypeError, match="mean_u"):
        f(m, eye, torch.tensor([0.0, math.nan], dtype=torch.float64), eye, 1.0)
    with pytest.raises(TypeError, match="cov_c"):
        f(m, [[1.0, 0.0], [0.0, 1.0]], m, eye, 1.0)
    for bad in (math.inf, "1", True, None):
        with pytest.raises(TypeError, match="w"):
            f(m, eye, m, eye, bad)
    # a class wider than the data: p(x | y)^(1 + w) p(x)^(-w) is not normalisable once w is large enough
    with pytest.raises(ValueError, match="w = 2"):
        f(m, 2 * eye, m, eye, 2.0)


def test_the_checks_name_a_misspelt_question_and_a_missing_answer():
    with pytest.raises(ValueError, match="name must be one of"):
        grading.run_check("cfg_eps_", grading.CHECKS["cfg_eps"].reference)
    assert "no function called log_class_posterior" in grading.run_check("log_class_posterior", None).message
    assert "must be a function" in grading.run_check("cfg_tilted_gaussian", (1.0, 2.0)).message
