"""An answer that calls the package's own answer scores nothing (minddim.grading.watch).

While the check runs the learner's function on a case and compares what it returned, every call of one of the
question's forbidden functions (the minddim function of the same name, the spec's ``forbidden`` list, the answer
key's reference) fails the check with one line: made directly, through an import made before, through a helper,
lazily from a generator, from a thread, or inside another package function the answer calls (the questions forbid only
functions no honest answer needs).  Calls the check makes itself (the reference, a custom checker's own work) do not
count, and honest answers built from the package pieces the prompts offer pass.
"""

import functools
import inspect
import sys
import threading
from pathlib import Path

import pytest
import torch

import minddim as md
from minddim import grading
from minddim.diffusion import q_sample as imported_before_the_check
from minddim.grading import spec, watch


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


def q_sample_from_a_thread(x0, t, schedule, noise):
    out = []
    worker = threading.Thread(target=lambda: out.append(md.q_sample(x0, t, schedule, noise)))
    worker.start()
    worker.join()
    return out[0]


def ddim_sample_calls_the_package(model, x_T, schedule, timesteps, eta, generator):
    return md.sample(model, x_T, schedule, timesteps, eta, generator=generator)


def uniform_timesteps_calls_the_package(T, S):
    return md.timesteps(T, S, "uniform").tolist()


def uniform_timesteps_lazily(T, S):          # a generator: its body runs only when the check reads the result
    yield from md.timesteps(T, S, "uniform").tolist()


def alpha_bars_through_the_schedule(betas):
    return md.Schedule(betas).alpha_bars


def euler_step_through_ddim(x_t, eps, t, t_prev, schedule):
    return md.ddim_step(x_t, eps, t, t_prev, schedule, 0.0)[0]


def epsilon_loss_through_objective(model, x0, t, noise, schedule):
    return md.objective(model, x0, schedule, "eps", "simple", t=t, noise=noise)


def p_mean_through_ddim(x_t, eps, t, schedule):
    return md.ddim_step(x_t, eps, t, t - 1, schedule, 1.0, torch.zeros_like(x_t))[0]


def cfg_eps_calls_the_package(eps_cond, eps_uncond, w):
    class TwoEps:                              # the learner's own two-prediction model, then the package's guidance
        num_classes = 1

        def __call__(self, x, t, y):
            return torch.where((y == 1).reshape(-1, *[1] * (x.dim() - 1)), eps_uncond, eps_cond)
    guided = md.classifier_free(TwoEps(), 0, w)
    return guided(torch.zeros_like(eps_cond), torch.ones(eps_cond.shape[0], dtype=torch.long))


def cfg_tilted_calls_the_key(mean_c, cov_c, mean_u, cov_u, w):
    from minddim.grading.keys.ex09_guidance import cfg_tilted_gaussian
    return cfg_tilted_gaussian(mean_c, cov_c, mean_u, cov_u, w)


def q_posterior_through_ddim_posterior(x0, x_t, t, schedule):     # DDIM eq. 7 with sigma^2 = tilde-beta_t
    return md.q_sigma_posterior(x0, x_t, t, t - 1, _per(md.ddim_sigma(schedule, t, t - 1, 1.0), x_t), schedule)


def p_mean_through_ddim_posterior(x_t, eps, t, schedule):
    x0_hat = md.predict_x0(x_t, eps, t, schedule)
    return q_posterior_through_ddim_posterior(x0_hat, x_t, t, schedule)[0]


def ancestral_step_through_ddim_posterior(x_t, eps, t, schedule, z):
    mean, var = q_posterior_through_ddim_posterior(md.predict_x0(x_t, eps, t, schedule), x_t, t, schedule)
    return mean + var.sqrt() * z


def ddim_step_through_ddim_posterior(x_t, eps, t, t_prev, schedule, eta, noise):
    sigma = _per(md.ddim_sigma(schedule, t, t_prev, eta), x_t)
    mean, var = md.q_sigma_posterior(md.predict_x0(x_t, eps, t, schedule), x_t, t, t_prev, sigma, schedule)
    return mean + var.sqrt() * noise


CHEATS = [("q_sample", q_sample_calls_the_package, "minddim.q_sample"),
          ("q_sample", q_sample_imported, "minddim.q_sample"),
          ("q_sample", q_sample_through_a_helper, "minddim.q_sample"),
          ("q_sample", q_sample_from_a_thread, "minddim.q_sample"),
          ("ddim_sample", ddim_sample_calls_the_package, "minddim.sample"),
          ("uniform_timesteps", uniform_timesteps_calls_the_package, "minddim.timesteps"),
          ("uniform_timesteps", uniform_timesteps_lazily, "minddim.timesteps"),
          ("alpha_bars", alpha_bars_through_the_schedule, "minddim.schedules.Schedule.__init__"),
          ("euler_step", euler_step_through_ddim, "minddim.ddim_step"),
          ("epsilon_loss", epsilon_loss_through_objective, "minddim.objective"),
          ("p_mean", p_mean_through_ddim, "minddim.ddim_step"),
          ("cfg_eps", cfg_eps_calls_the_package, "minddim.classifier_free"),
          ("cfg_tilted_gaussian", cfg_tilted_calls_the_key, "the answer key's reference for cfg_tilted_gaussian"),
          ("q_posterior", q_posterior_through_ddim_posterior, "minddim.q_sigma_posterior"),
          ("p_mean", p_mean_through_ddim_posterior, "minddim.q_sigma_posterior"),
          ("ancestral_step", ancestral_step_through_ddim_posterior, "minddim.q_sigma_posterior"),
          ("ddim_step", ddim_step_through_ddim_posterior, "minddim.q_sigma_posterior")]


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


def test_the_check_raises_that_line_in_a_notebook_and_the_hint_says_why(capsys):
    with pytest.raises(grading.CheckFailed, match="your answer calls minddim.q_sample"):
        grading.check("q_sample", q_sample_calls_the_package)
    for _ in range(3):
        text = grading.hint("q_sample")
    assert text.startswith("hint 3/3 for q_sample (your last answer): your last answer called minddim.q_sample, "
                           "the package's own answer, so it was not graded")


def test_honest_answers_that_use_allowed_package_pieces_pass():
    def q_sample(x0, t, schedule, noise):       # Schedule's attributes are the learner's to use
        ab = _per(schedule.alpha_bars[t], x0)
        return ab.sqrt() * x0 + (1 - ab).sqrt() * noise
    assert grading.run_check("q_sample", q_sample).passed

    def p_mean(x_t, eps, t, schedule):          # DDPM eq. 11's first form: the posterior mean at x_0's estimate
        return md.q_posterior(md.predict_x0(x_t, eps, t, schedule), x_t, t, schedule)[0]
    assert grading.run_check("p_mean", p_mean).passed

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
            noise = torch.randn(x.shape, generator=generator, dtype=x.dtype) if eta and t_prev > 0 else None
            x, _ = md.ddim_step(x, model(x, tt), tt, torch.full_like(tt, t_prev), schedule, eta, noise)
        return x
    v = grading.run_check("ddim_sample", ddim_sample)
    assert v.passed, v.message


@pytest.mark.parametrize("answer, what", [(md.q_sample, "minddim.q_sample"),
                                          (imported_before_the_check, "minddim.q_sample"),
                                          (functools.partial(md.q_sample), "minddim.q_sample"),
                                          (grading.CHECKS["q_sample"].reference,
                                           "the answer key's reference for q_sample")])
def test_the_package_function_itself_as_the_answer_fails(answer, what):     # q_sample = md.q_sample
    v = grading.run_check("q_sample", answer)
    assert not v.passed and v.message.startswith(f"your answer calls {what} (the package's own answer)")


@pytest.fixture
def scratch_question():
    """A question registered for one test only (removed after it)."""
    names = []

    def make(name, **kw):
        spec.register(name, **kw)
        names.append(name)
    yield make
    for name in names:
        del spec.CHECKS[name]


def _posterior_mean(x0, x_t, t, schedule):
    return md.q_posterior(x0, x_t, t, schedule)[0]


def test_calls_the_check_makes_itself_do_not_count_and_calls_inside_the_answer_do(scratch_question):
    s = md.Schedule.linear(10, 1e-3, 0.3)
    inputs = {"x0": torch.ones(2, 2), "x_t": torch.zeros(2, 2), "t": torch.tensor([3, 7]), "schedule": s}

    # a checker that calls the forbidden function itself, outside the answer; compiled under a file name in the
    # package's folder, as the answer key's checkers are
    source = ("def checker(fn, **kw):\n"
              "    expected = md.q_posterior(kw['x0'], kw['x_t'], kw['t'], kw['schedule'])[0]\n"
              "    return None if torch.allclose(fn(**kw), expected) else ('wrong', None)\n")
    where = {"md": md, "torch": torch}
    exec(compile(source, str(Path(md.__file__).parent / "grading" / "keys" / "_scratch_checker.py"), "exec"), where)
    checker = where["checker"]
    scratch_question("_scratch_posterior_mean", cases=lambda: [spec.Case("one case", inputs)], reference=_posterior_mean,
                     mistakes={}, checker=checker, forbidden=("diffusion.q_posterior",))

    def honest(x0, x_t, t, schedule):
        ab, ab_prev, beta = _per(s.alpha_bars[t], x0), _per(s.alpha_bars[t - 1], x0), _per(s.betas[t], x0)
        return (ab_prev.sqrt() * beta * x0 + (1 - beta).sqrt() * (1 - ab_prev) * x_t) / (1 - ab)
    assert grading.run_check("_scratch_posterior_mean", honest).passed

    def through_p_mean(x0, x_t, t, schedule):    # md.p_mean calls q_posterior internally: counted all the same
        eps = (x_t - _per(s.alpha_bars[t], x0).sqrt() * x0) / (1 - _per(s.alpha_bars[t], x0)).sqrt()
        return md.p_mean(x_t, eps, t, schedule)
    v = grading.run_check("_scratch_posterior_mean", through_p_mean)
    assert not v.passed and v.message.startswith("your answer calls minddim.q_posterior")


def _call_with_nones(f):
    """Call ``f`` as an answer would, with None for each argument it needs (it fails at once; the call is made)."""
    needed = [p for p in inspect.signature(f).parameters.values()
              if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    try:
        out = f(*[None] * len(needed))
        list(out) if inspect.isgenerator(out) else None       # a generator's body runs when it is read
    except Exception:
        pass


def test_every_forbidden_function_is_watched():
    """Each forbidden function has a code object, and an answer's call of it is caught under that function's own
    label (no two forbidden functions share a code object under different labels)."""
    for name in grading.CHECKS:
        entries = watch.forbidden(name)
        assert entries[-1][0] == f"the answer key's reference for {name}"
        for label, f in entries:
            assert watch._code_of(f) is not None, f"{name}: {label} has no code object the watch can match"
            w = watch.CallWatch(entries)
            with w:
                _call_with_nones(f)
            assert w.caught == label, (name, label, w.caught)
    assert "minddim.q_sample" in [label for label, _ in watch.forbidden("q_sample")]
    assert "minddim.ddim_step" in [label for label, _ in watch.forbidden("ancestral_step")]


def test_the_watch_leaves_no_profile_function_behind():
    before = sys.getprofile(), threading.getprofile()
    grading.run_check("q_sample", q_sample_calls_the_package)
    grading.run_check("q_sample", lambda **kw: 1 / 0)
    assert (sys.getprofile(), threading.getprofile()) == before


def test_a_thread_started_during_the_check_is_not_watched_after_it():
    seen, go = {}, threading.Event()

    def worker():
        go.wait()
        seen["profile"] = sys.getprofile()

    def q_sample(x0, t, schedule, noise):        # an honest answer that starts a long-lived thread (a pool, a monitor)
        if "thread" not in seen:
            seen["thread"] = threading.Thread(target=worker, daemon=True)
            seen["thread"].start()
        ab = _per(schedule.alpha_bars[t], x0)
        return ab.sqrt() * x0 + (1 - ab).sqrt() * noise
    assert grading.run_check("q_sample", q_sample).passed
    go.set()
    seen["thread"].join()
    assert seen["profile"] is None
