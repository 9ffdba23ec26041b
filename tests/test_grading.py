"""The exercise checks: the reference passes, every listed learner mistake is rejected with its own hint,
and malformed answers (not implemented, exceptions, wrong shape, dtype, NaN) get one readable line."""

import pytest
import torch

import minddim as md
from minddim import grading

MISTAKES = [(name, hint) for name, spec in grading.CHECKS.items() for hint in spec.mistakes]


def _q_sample(x0, t, schedule, noise):  # an honest answer (the reference itself would be calling the answer key)
    ab = schedule.alpha_bars[t].to(x0.dtype).reshape(-1, *[1] * (x0.dim() - 1))
    return ab.sqrt() * x0 + (1 - ab).sqrt() * noise


@pytest.mark.parametrize("name", sorted(grading.CHECKS))
def test_the_reference_passes(name):
    v = grading.run_check(name, grading.CHECKS[name].reference, _watch=False)
    assert v.passed, v.line()
    assert v.cases == len(grading.CHECKS[name].cases()) >= 2


@pytest.mark.parametrize("name,hint", MISTAKES, ids=[f"{n}:{h[:40]}" for n, h in MISTAKES])
def test_each_known_mistake_is_rejected_with_its_hint(name, hint):
    v = grading.run_check(name, grading.CHECKS[name].mistakes[hint])
    assert not v.passed
    assert hint in v.message, v.message
    assert "expected" in v.message and "got" in v.message
    assert "\n" not in v.line()


def test_every_check_knows_at_least_one_mistake():
    assert all(len(spec.mistakes) >= 1 for spec in grading.CHECKS.values())
    # every registered question is asked in exactly one solution notebook, and every question asked there is registered
    from pathlib import Path
    asked = [name for sol in sorted((Path(__file__).resolve().parents[1] / "solutions").glob("[0-9][0-9]_*.py"))
             for name, _ in grading.questions(sol)]
    assert sorted(asked) == sorted(grading.CHECKS)


def _stub(*args, **kwargs):
    raise NotImplementedError


@pytest.mark.parametrize("name", sorted(grading.CHECKS))
def test_a_stub_is_not_implemented_yet(name):
    v = grading.run_check(name, _stub)
    assert not v.passed and "not implemented yet" in v.message


def test_forgetting_to_broadcast_over_the_batch_gets_the_broadcast_hint():
    def q_sample(x0, t, schedule, noise):  # coefficient of shape (batch,) against x of shape (batch, D)
        ab = schedule.alpha_bars[t].to(x0.dtype)
        return ab.sqrt() * x0 + (1 - ab).sqrt() * noise
    v = grading.run_check("q_sample", q_sample)
    assert not v.passed and "broadcast" in v.message and "raised RuntimeError" in v.message

    def q_sample_2d_only(x0, t, schedule, noise):  # works for (B, D), not for images
        ab = schedule.alpha_bars[t].to(x0.dtype)[:, None]
        return ab.sqrt() * x0 + (1 - ab).sqrt() * noise
    v = grading.run_check("q_sample", q_sample_2d_only)
    assert not v.passed and "image-shaped" in v.message and "broadcast" in v.message


def test_wrong_dtype_shape_and_nan_are_reported():
    v = grading.run_check("q_sample", lambda **kw: _q_sample(**kw).float())
    assert not v.passed and "float64" in v.message and "dtype" in v.message
    assert "cast what you take from them to the input's dtype" in v.message      # not "compare ... term by term"
    v = grading.run_check("q_sample", lambda **kw: _q_sample(**kw).sum(-1))
    assert not v.passed and "shape" in v.message
    v = grading.run_check("q_sample", lambda **kw: _q_sample(**kw) * float("nan"))
    assert not v.passed and "NaN" in v.message
    one = lambda **kw: _q_sample(kw["x0"], kw["t"], kw["schedule"], kw["x_t"])    # noqa: E731  (a tensor, not a pair)
    v = grading.run_check("q_posterior", one)
    assert not v.passed and "expected a tuple of 2 values, got Tensor" in v.message
    v = grading.run_check("q_posterior", lambda **kw: (one(**kw),))
    assert not v.passed and "expected a tuple of 2 values, got tuple" in v.message


def test_check_prints_on_success_and_raises_one_line_on_failure(capsys):
    v = grading.check("alpha_bars", lambda betas: torch.cumprod(1 - betas, 0))
    assert v.passed and capsys.readouterr().out.startswith("PASS alpha_bars")
    with pytest.raises(grading.CheckFailed) as info:
        grading.check("alpha_bars", lambda betas: torch.cumprod(betas, 0))
    rendered = info.value._render_traceback_()
    assert len(rendered) == 1 and rendered[0].startswith("FAIL alpha_bars") and "Hint:" in rendered[0]


def test_missing_and_non_callable_answers():
    assert "no function called q_step" in grading.run_check("q_step", None).message
    assert "must be a function" in grading.run_check("q_step", 3).message
    with pytest.raises(ValueError, match="name"):
        grading.run_check("q_smaple", _stub)


def test_check_json_never_raises():
    line = grading.check_json("q_step", _stub)
    assert line.startswith("MINDDIM_VERDICT ") and '"passed": false' in line


def test_the_heun_step_reference_is_one_step_of_the_package_sampler():
    """heun_step's reference, then the Euler step to 0, is md.heun on the timesteps (t_prev, t)."""
    import minddim as md

    schedule = md.Schedule.linear()
    model = md.GaussianMixtureDenoiser(*md.toy_mixture("eight_gaussians"), schedule)
    x = torch.randn(6, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    t, t_prev = torch.full((6,), 600), torch.full((6,), 250)
    x_prev = grading.CHECKS["heun_step"].reference(model, x, t, t_prev, schedule)
    x0 = md.euler_step(x_prev, model(x_prev, t_prev), t_prev, torch.zeros(6, dtype=torch.long), schedule)
    torch.testing.assert_close(x0, md.heun(model, x, schedule, torch.tensor([250, 600])), rtol=1e-12, atol=1e-12)


def test_the_inpaint_step_reference_is_one_step_of_the_package_inpainting():
    """md.inpaint on the timesteps (t_prev, t) with eta = 0 is: replace x_T's known pixels at t, then the
    inpaint_step reference from t to t_prev and from t_prev to 0, with the generator's draws in that order."""
    import minddim as md

    schedule = md.Schedule.linear()
    model = md.GaussianDenoiser(torch.tensor([0.5, -0.5]), torch.tensor([[1.0, 0.6], [0.6, 0.8]]), schedule)
    g = torch.Generator().manual_seed(0)
    x0, x_T = torch.randn(6, 2, generator=g, dtype=torch.float64), torch.randn(6, 2, generator=g, dtype=torch.float64)
    mask = torch.tensor([[True, False]] * 3 + [[False, True]] * 3)
    got = md.inpaint(model, x0, mask, schedule, torch.tensor([250, 600]), eta=0.0, x_T=x_T,
                     generator=torch.Generator().manual_seed(1))
    g = torch.Generator().manual_seed(1)
    n1, n2, n3 = (torch.randn(6, 2, generator=g, dtype=torch.float64) for _ in range(3))
    step = grading.CHECKS["inpaint_step"].reference
    x = grading.CHECKS["replace_known"].reference(x_T, x0, mask, None, torch.full((6,), 600), schedule, n1)
    for t, t_prev, n in ((600, 250, n2), (250, 0, n3)):
        x = step(model, x, x0, mask, torch.full((6,), t), torch.full((6,), t_prev), schedule, 0.0, torch.zeros_like(x), n)
    torch.testing.assert_close(got, x, rtol=1e-12, atol=1e-12)
    assert torch.equal(got[mask], x0[mask])


def test_the_progressive_rate_reference_is_the_bound_at_t_0_and_the_prior_term_at_t_T():
    terms = torch.rand(3, 11, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    rate = grading.CHECKS["progressive_rate"].reference(terms)
    torch.testing.assert_close(rate[:, 0], terms.sum(-1))
    torch.testing.assert_close(rate[:, -1], terms[:, -1])
    assert (rate[:, :-1] >= rate[:, 1:]).all()


# -- the hint ladder -------------------------------------------------------------------------------------
def _solution_code():
    """Every line inside the solutions' BEGIN/END SOLUTION regions (stripped, long enough to be code)."""
    from pathlib import Path

    lines = []
    for sol in sorted((Path(__file__).resolve().parents[1] / "solutions").glob("[0-9][0-9]_*.py")):
        inside = False
        for ln in sol.read_text().splitlines():
            if "### BEGIN SOLUTION" in ln:
                inside = True
            elif "### END SOLUTION" in ln:
                inside = False
            elif inside and len(ln.strip()) > 25 and not ln.strip().startswith("#"):
                lines.append(ln.strip())
    return lines


def _reference_code(spec):
    import inspect

    try:
        src = inspect.getsource(spec.reference)
    except (OSError, TypeError):
        return []
    body = src.split(":", 1)[1] if "lambda" in src.split(":", 1)[0] else src
    return [ln.strip().rstrip(",)") for ln in body.splitlines() if len(ln.strip().rstrip(",)")) > 25]


def _fresh_ladder(name):
    from minddim.grading import runner as checks

    checks._LAST_FAILURE.pop(name, None)
    checks._RUNG.pop(name, None)


def test_every_question_has_both_first_rungs_of_the_hint_ladder():
    for name, spec in grading.CHECKS.items():
        assert len(spec.hints) == 2 and all(isinstance(h, str) and len(h) > 20 for h in spec.hints), name
        assert "notebook" in spec.hints[1], name       # the second rung names where it is derived


def test_the_hint_ladder_climbs_meaning_equation_mistake(capsys):
    name = "q_sample"
    _fresh_ladder(name)
    assert "no failed check" in grading.hint(name)
    assert grading.run_check(name, grading.CHECKS[name].reference, _watch=False).passed
    assert "no failed check" in grading.hint(name)         # passing leaves nothing to hint at
    mistake = list(grading.CHECKS[name].mistakes)[1]
    assert not grading.run_check(name, grading.CHECKS[name].mistakes[mistake]).passed
    h1, h2, h3, h4 = (grading.hint(name) for _ in range(4))
    assert h1.startswith("hint 1/3") and grading.CHECKS[name].hints[0] in h1
    assert h2.startswith("hint 2/3") and grading.CHECKS[name].hints[1] in h2
    assert h3.startswith("hint 3/3") and mistake in h3
    assert h4 == h3                                          # the top rung repeats
    out = capsys.readouterr().out
    assert out.count("hint 3/3") == 2 and "\n" not in h3
    assert grading.run_check(name, grading.CHECKS[name].reference, _watch=False).passed
    assert "no failed check" in grading.hint(name)           # a pass resets the ladder
    with pytest.raises(ValueError, match="name"):
        grading.hint("q_smaple")


def test_the_top_rung_says_when_no_known_mistake_matched_or_nothing_was_written():
    name = "alpha_bars"
    _fresh_ladder(name)
    grading.run_check(name, lambda betas: torch.cumprod(1 - betas, 0) + 1)
    for _ in range(2):
        grading.hint(name)
    assert "matched none of the known mistakes" in grading.hint(name)
    _fresh_ladder(name)
    grading.run_check(name, _stub)
    grading.hint(name), grading.hint(name)
    assert "not implemented yet" in grading.hint(name)


@pytest.mark.parametrize("name", sorted(grading.CHECKS))
def test_no_hint_contains_the_solution_code(name):
    spec = grading.CHECKS[name]
    texts = list(spec.hints) + list(spec.mistakes)
    code = _solution_code() + _reference_code(spec)
    for text in texts:
        for ln in code:
            assert ln not in text, (name, ln)


# -- the new questions' references against the package ----------------------------------------------------
def test_the_middle_term_reference_is_the_bound_column_and_the_decoder_its_first():
    """middle_term(x0, x_t, eps_theta(x_t), t) is md.vlb_terms' column t - 1 for the same draw of x_t, and
    decoder_nll(x0, p_mean, sigma_1^2) its column 0 (8-bit data)."""
    import minddim as md
    from minddim.grading.keys import ex02_posterior_and_bound as answers

    schedule = md.Schedule.linear()
    model = md.GaussianMixtureDenoiser(*md.toy_mixture("eight_gaussians"), schedule)
    x0 = (torch.randint(0, 256, (6, 2), generator=torch.Generator().manual_seed(0)).double() / 127.5 - 1)
    for variance in ("beta_tilde", "beta"):
        for t in (1, 2, 37, 600):
            terms = md.vlb_terms(model, x0, schedule, variance=variance, times=[t],
                                 generator=torch.Generator().manual_seed(t))
            x_t = md.q_sample(x0, t, schedule, generator=torch.Generator().manual_seed(t))
            tb = torch.full((6,), t)
            eps = model(x_t, tb)
            if t == 1:
                var = md.bound.reverse_variance(schedule, tb, x0, variance)
                got = answers.decoder_nll(x0, md.p_mean(x_t, eps, tb, schedule), var)
            else:
                got = answers.middle_term(x0, x_t, eps, tb, schedule, variance)
            torch.testing.assert_close(got, terms[:, t - 1], rtol=1e-10, atol=1e-12)


def test_gamma_weight_makes_each_kl_exactly_gamma_times_the_eps_error():
    """KL(q_sigma(x_{t-1} | x_t, x_0) || p_theta) with p_theta's mean from x0_hat(eps_theta) and the same sigma_t
    is gamma_t ||eps - eps_theta||^2; at sigma_t^2 = tilde-beta_t, gamma_t is DDPM eq. 12's weight."""
    import minddim as md
    from minddim.grading.keys import ex04_ddim_step as answers

    schedule = md.Schedule.linear()
    g = torch.Generator().manual_seed(1)
    x0, eps = torch.randn(5, 3, generator=g, dtype=torch.float64), torch.randn(5, 3, generator=g, dtype=torch.float64)
    eps_theta = eps + 0.3 * torch.randn(5, 3, generator=g, dtype=torch.float64)
    t = torch.tensor([2, 10, 250, 700, 1000])
    for eta in (0.1, 0.5, 1.0):
        sigma = md.ddim_sigma(schedule, t, t - 1, eta)
        x_t = md.q_sample(x0, t, schedule, eps)
        q_mean, var = md.q_sigma_posterior(x0, x_t, t, t - 1, sigma, schedule)
        p_mean, _ = md.q_sigma_posterior(md.predict_x0(x_t, eps_theta, t, schedule), x_t, t, t - 1, sigma, schedule)
        kl = md.bound.normal_kl(q_mean, var.expand_as(q_mean), p_mean, var.expand_as(p_mean)).sum(1)
        gamma = answers.gamma_weight(t, schedule, sigma)
        torch.testing.assert_close(kl, gamma * ((eps - eps_theta) ** 2).sum(1), rtol=1e-8, atol=1e-12)
    sigma2 = schedule.beta_tildes[t]
    eq12 = schedule.betas[t] ** 2 / (2 * sigma2 * schedule.alphas[t] * (1 - schedule.alpha_bars[t]))
    torch.testing.assert_close(answers.gamma_weight(t, schedule, sigma2.sqrt()), eq12, rtol=1e-8, atol=0)


def test_least_weighted_t_and_eta_one_variances():
    import minddim as md
    from minddim.grading.keys import ex04_ddim_step as answers

    schedule = md.Schedule.linear()
    w = answers.bound_eps_weight(schedule)
    t = answers.least_weighted_t(schedule)
    assert 1 < t < schedule.T and w[t] == w[1:].min() and w[t - 1] > w[t] < w[t + 1]
    sigma2, beta_tilde = answers.eta_one_variances(schedule, torch.arange(1, schedule.T + 1),
                                                   torch.arange(0, schedule.T))
    assert sigma2.shape == (schedule.T,) and float((sigma2 - beta_tilde).abs().max()) < 1e-12


def test_the_training_check_times_and_spies():
    """The spy case needs no training (each listed mistake is caught there, in well under a second); the
    training case's budget is stated in the check's label."""
    import time

    from minddim.grading.keys import ex03_epsilon_loss as answers

    for hint, mistake in grading.CHECKS["training_step"].mistakes.items():
        start = time.perf_counter()
        v = grading.run_check("training_step", mistake)
        assert not v.passed and "spy" in v.message and time.perf_counter() - start < 2.0, (hint, v.message)
    assert f"{answers.TRAIN_STEPS} steps" in grading.CHECKS["training_step"].cases()[1].label


def test_a_training_step_that_prints_every_step_is_graded_without_the_flood(capsys):
    def training_step(model, optimizer, x0_batch, schedule, generator):
        t = torch.randint(1, schedule.T + 1, (x0_batch.shape[0],), generator=generator)
        noise = torch.randn(x0_batch.shape, generator=generator, dtype=x0_batch.dtype)
        loss = md.epsilon_loss(model, x0_batch, schedule, t=t, noise=noise)   # the package's loss is allowed here
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        loss = loss.item()
        print("loss", loss)
        return loss
    v = grading.run_check("training_step", training_step)
    assert v.passed, v.line()
    assert capsys.readouterr().out.count("loss") <= 3          # the spy's three calls only


@pytest.mark.parametrize("name,hint", MISTAKES, ids=[f"{n}:{h[:40]}" for n, h in MISTAKES])
def test_the_top_rung_names_each_known_mistake(name, hint):
    _fresh_ladder(name)
    assert not grading.run_check(name, grading.CHECKS[name].mistakes[hint]).passed
    rungs = [grading.hint(name) for _ in range(3)]
    assert [r.split(" ")[1] for r in rungs] == ["1/3", "2/3", "3/3"]
    assert hint in rungs[2] and "matched a known mistake" in rungs[2]


def test_the_points_table_in_readme_is_the_notebooks():
    """README's table of questions ("What each question asks of the learner") lists every solution notebook's graded
    questions in order with their points, and a kind (T, D, M or I) for each."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text()
    table = readme[readme.index("**What each question asks of the learner**"):]
    rows = dict(re.findall(r"^\| (\d\d) \| (.*) \|$", table, flags=re.M))
    for sol in sorted((root / "solutions").glob("[0-9][0-9]_*.py")):
        listed = [tuple(item.split()) for item in rows.get(sol.name[:2], "").split(", ")]
        assert [(n, str(p)) for n, p in grading.questions(sol)] == [item[:2] for item in listed], sol.name
        assert all(len(item) == 3 and item[2] in "TDMI" for item in listed), sol.name


def _posterior(x0, x_t, t, schedule):
    shape = (-1, *[1] * (x_t.dim() - 1))
    ab, ab_prev, beta = (v.to(x_t.dtype).view(shape) for v in (schedule.alpha_bars[t], schedule.alpha_bars[t - 1],
                                                                 schedule.betas[t]))
    mean = ab_prev.sqrt() * beta / (1 - ab) * x0 + (1 - beta).sqrt() * (1 - ab_prev) / (1 - ab) * x_t
    return mean, (1 - ab_prev) / (1 - ab) * beta


def test_a_value_that_broadcasts_to_the_expected_shape_passes_and_another_shape_is_named():
    # the variance at x's full shape is the same variance as at (batch, 1, ...); at (batch,) it is a wrong shape,
    # said as such (not blamed on the learner's code as an error it raised)
    def full(x0, x_t, t, schedule):
        mean, var = _posterior(x0, x_t, t, schedule)
        return mean, var.expand_as(x_t).clone()

    def flat(x0, x_t, t, schedule):
        mean, var = _posterior(x0, x_t, t, schedule)
        return mean, var.reshape(-1)
    assert grading.run_check("q_posterior", _posterior).passed
    assert grading.run_check("q_posterior", full).passed
    v = grading.run_check("q_posterior", flat)
    assert not v.passed and "item 1 of the tuple: expected shape (5, 1), got (5,)" in v.message, v.message


def test_an_answer_whose_batch_collapsed_to_one_row_is_a_wrong_shape():
    # equal rows (e.g. ddim_sigma at eta = 0, all zeros) must not let a one-row answer stand for the whole batch
    from minddim.grading.runner import _compare

    spec = grading.CHECKS["q_sample"]
    assert _compare(torch.zeros(6), torch.zeros(1), spec) == "expected shape (6,), got (1,)"
    assert _compare(torch.ones(5, 2), torch.ones(1, 2), spec) == "expected shape (5, 2), got (1, 2)"
    assert _compare(torch.ones(5, 2), torch.ones(5, 1), spec) is None      # a per-row value broadcasts


def test_a_generator_answer_is_read_and_graded():
    def uniform_timesteps(T, S):          # an honest generator
        for i in range(S):
            yield i * T // S + 1
    v = grading.run_check("uniform_timesteps", uniform_timesteps)
    assert v.passed, v.message


def test_the_pass_line_lists_the_cases_separated_so_they_can_be_counted():
    v = grading.run_check("q_sample", _q_sample)
    assert v.passed
    labels = v.message[v.message.index("(") + 1:-1].split("; ")
    assert labels == [c.label for c in grading.CHECKS["q_sample"].cases()] and len(labels) == v.cases
