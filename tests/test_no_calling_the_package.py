"""An answer that returns the package's own result scores nothing: while the learner's function runs on a check's
cases, the question's forbidden functions (the minddim function of the same name, the answer key's reference and the
spec's ``forbidden``) are watched, and a call from the learner's code fails the check with one line.  Calls the
package makes itself (the reference computed by the check) and allowed package pieces (Schedule's attributes,
md.ddim_step where the prompt offers it) do not count."""

import functools

import pytest
import torch

import minddim as md
from minddim import checks, grading
from minddim.diffusion import q_sample as imported_before_the_check


def _per(v, x):
    return v.to(x.dtype).reshape(-1, *[1] * (x.dim() - 1))


def q_sample_calls_the_package(x0, t, schedule, noise):
    return md.q_sample(x0, t, schedule, noise)


def q_sample_imported(x0, t, schedule, noise):
    return imported_before_the_check(x0, t, schedule, noise)


def q_sample_through_a_helper(x0, t, schedule, noise):
    def helper():
        return md.diffusion.q_sample(x0, t, schedule, noise)
    return helper() + 0


def ddim_sample_calls_the_package(model, x_T, schedule, timesteps, eta, generator):
    return md.sample(model, x_T, schedule, timesteps, eta, generator=generator)


def uniform_timesteps_calls_the_package(T, S):
    return md.timesteps(T, S, "uniform").tolist()


def cfg_eps_calls_the_package(eps_cond, eps_uncond, w):
    class TwoEps:                              # the learner's own two-prediction model, then the package's guidance
        num_classes = 1

        def __call__(self, x, t, y):
            return torch.where((y == 1).reshape(-1, *[1] * (x.dim() - 1)), eps_uncond, eps_cond)
    guided = md.classifier_free(TwoEps(), 0, w)
    return guided(torch.zeros_like(eps_cond), torch.ones(eps_cond.shape[0], dtype=torch.long))


def cfg_tilted_calls_the_key(mean_c, cov_c, mean_u, cov_u, w):
    from minddim.answers_guidance import cfg_tilted_gaussian
    return cfg_tilted_gaussian(mean_c, cov_c, mean_u, cov_u, w)


CHEATS = [("q_sample", q_sample_calls_the_package, "minddim.q_sample"),
          ("q_sample", q_sample_imported, "minddim.q_sample"),
          ("q_sample", q_sample_through_a_helper, "minddim.q_sample"),
          ("ddim_sample", ddim_sample_calls_the_package, "minddim.sample"),
          ("uniform_timesteps", uniform_timesteps_calls_the_package, "minddim.timesteps"),
          ("cfg_eps", cfg_eps_calls_the_package, "minddim.classifier_free"),
          ("cfg_tilted_gaussian", cfg_tilted_calls_the_key, "the answer key's cfg_tilted_gaussian")]


@pytest.mark.parametrize("name, answer, what", CHEATS, ids=[f"{n}-{a.__name__}" for n, a, _ in CHEATS])
def test_an_answer_that_calls_the_package_fails_with_one_line(name, answer, what):
    v = grading.run_check(name, answer)
    assert not v.passed
    assert v.message == f"your answer calls {what} (the package's own answer); write it yourself: no points"
    assert v.line().startswith(f"FAIL {name}: your answer calls ") and "\n" not in v.line()


@pytest.mark.parametrize("name", ["q_sample", "ddim_step", "ddim_sample", "middle_term", "training_step", "cfg_eps",
                                  "log_class_posterior", "inpaint_step"])
def test_an_answer_that_calls_the_answer_keys_reference_fails(name):
    reference = grading.CHECKS[name].reference

    def answer(*args, **kw):
        return reference(*args, **kw)
    v = grading.run_check(name, answer)
    assert not v.passed
    assert v.message == (f"your answer calls the answer key's reference for {name} (the package's own answer); "
                         f"write it yourself: no points")


def test_the_check_raises_that_line_in_a_notebook():
    with pytest.raises(grading.CheckFailed, match="your answer calls minddim.q_sample"):
        grading.check("q_sample", q_sample_calls_the_package)


def test_honest_answers_that_use_allowed_package_pieces_pass():
    def q_sample(x0, t, schedule, noise):       # Schedule's attributes are the learner's to use
        ab = _per(schedule.alpha_bars[t], x0)
        return ab.sqrt() * x0 + (1 - ab).sqrt() * noise
    assert grading.run_check("q_sample", q_sample).passed

    def replace_known(x_prev, x0, mask, t, t_prev, schedule, noise):
        ab = _per(schedule.alpha_bars[t_prev], x0)
        return torch.where(mask.bool(), ab.sqrt() * x0 + (1 - ab).sqrt() * noise, x_prev)

    def inpaint_step(model, x_t, x0, mask, t, t_prev, schedule, eta, noise, noise_known):
        x_prev, _ = md.ddim_step(x_t, model(x_t, t), t, t_prev, schedule, eta, noise)   # offered by the prompt
        return replace_known(x_prev, x0, mask, t, t_prev, schedule, noise_known)
    assert grading.run_check("replace_known", replace_known).passed
    assert grading.run_check("inpaint_step", inpaint_step).passed

    def ddim_sample(model, x_T, schedule, timesteps, eta, generator):   # the sampler from the package's step
        x, tau = x_T, [0] + [int(s) for s in timesteps]
        for t, t_prev in zip(tau[:0:-1], tau[-2::-1]):
            tt = torch.full((x.shape[0],), t)
            noise = torch.randn(x.shape, generator=generator, dtype=x.dtype) if eta else None
            x, _ = md.ddim_step(x, model(x, tt), tt, torch.full_like(tt, t_prev), schedule, eta, noise)
        return x
    v = grading.run_check("ddim_sample", ddim_sample)
    assert "calls" not in v.message


@pytest.mark.parametrize("answer, what", [(md.q_sample, "minddim.q_sample"),
                                          (imported_before_the_check, "minddim.q_sample"),
                                          (functools.partial(md.q_sample), "minddim.q_sample"),
                                          (grading.CHECKS["q_sample"].reference,
                                           "the answer key's reference for q_sample")])
def test_the_package_function_itself_as_the_answer_fails(answer, what):     # q_sample = md.q_sample
    v = grading.run_check("q_sample", answer)
    assert not v.passed and v.message.startswith(f"your answer calls {what} (the package's own answer)")


def test_the_package_computing_the_reference_does_not_count():
    # the reference, called by the check (not by learner code), still passes with the watch off (the generic
    # test_the_reference_passes), and a known mistake, written in the package, still gets its own hint
    assert grading.run_check("q_sample", grading.CHECKS["q_sample"].reference, _watch=False).passed
    hint, mistake = next(iter(grading.CHECKS["middle_term"].mistakes.items()))
    v = grading.run_check("middle_term", mistake)
    assert not v.passed and hint in v.message


def test_every_question_forbids_at_least_its_reference():
    for name in grading.CHECKS:
        labels = [label for label, _ in checks.forbidden(name)]
        assert labels[-1] == f"the answer key's reference for {name}"
    assert "minddim.q_sample" in [label for label, _ in checks.forbidden("q_sample")]
    assert "minddim.ddim_step" in [label for label, _ in checks.forbidden("ancestral_step")]
