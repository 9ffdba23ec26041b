"""Running a check: one-line verdicts, the known mistake that reproduces a wrong answer named, the hint ladder.

``check(name, fn)`` runs the learner's ``fn`` next to the package's reference on random inputs and on edge
cases (t = 1, t = T, batch size 1, float64, image-shaped x) and answers in one line: what was expected,
what came back, and a hint.  When the answer is wrong, the check also runs the mistakes learners really
make (alpha_t where alpha-bar_t belongs, a variance where a standard deviation belongs, the 0-based
off-by-one, a missing square root, ignoring eta, the score's sign, ...) and, if one of them reproduces the
learner's output, names it.  A failed check raises :class:`CheckFailed`, which IPython renders as that one
line (no traceback) and which nbgrader counts as a failed test.

An answer that is, or calls, one of the question's forbidden functions (the package's own answer:
:mod:`minddim.grading.watch`) fails in one line, "your answer calls minddim.q_sample (the package's own answer);
write it yourself: no points", whatever it returns, and the grader gives it no points.

The questions (:class:`~minddim.grading.spec.Spec`: cases, reference, mistakes) are registered by the answer key,
:mod:`minddim.grading.keys`, one module per exercise.  Notebooks reach these names through :mod:`minddim.grading`
(``from minddim import grading; grading.check(...)``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass

import torch

from .spec import CHECKS, Spec
from .watch import CallWatch, forbidden


BROADCAST_HINT = ("t has shape (batch,): reshape per-sample coefficients to (batch, 1, ..., 1) so they "
                  "broadcast over x (e.g. coef.view(-1, *[1] * (x.dim() - 1)))")


@dataclass
class Verdict:
    name: str
    passed: bool
    message: str          # one line
    cases: int = 0        # how many cases passed (on a failure: the 0-based index of the failing case)

    def line(self) -> str:
        return f"{'PASS' if self.passed else 'FAIL'} {self.name}: {self.message}"

    def __str__(self) -> str:
        return self.line()

    def _ipython_display_(self):
        """A check cell shows one line: :func:`check` has printed it already, so the returned verdict adds
        nothing as the cell's value (no second ``Verdict(...)`` line); any other verdict shows its line."""
        if not getattr(self, "_printed", False):
            print(self.line())


class CheckFailed(AssertionError):
    """Raised by :func:`check` for a wrong answer; shown by IPython as one line, without a traceback."""

    def __init__(self, verdict: Verdict):
        super().__init__(verdict.line())
        self.verdict = verdict

    def _render_traceback_(self):
        return [self.verdict.line()]


# the hint ladder's memory, per question, in this kernel: the last failure (case label, problem, the matched
# mistake's hint or None) and how many rungs of the ladder have been shown since that question last passed (or since
# the kernel started)
_LAST_FAILURE: dict[str, tuple] = {}
_RUNG: dict[str, int] = {}


_CALLED = "your answer calls "     # how a refused answer's problem starts (the ladder's rung 3 reads it)


# -- running a check ------------------------------------------------------------------------------
def check(name: str, fn) -> Verdict:
    """Check the learner's ``fn`` for exercise ``name``; print one line on success, raise on failure.

    Returns the :class:`Verdict`, which a notebook cell ending in ``check(...)`` does not display again: the
    cell shows exactly one line, ``PASS ...`` or ``FAIL ...``."""
    verdict = run_check(name, fn)
    if not verdict.passed:
        raise CheckFailed(verdict)
    print(verdict.line())
    verdict._printed = True      # not a field: asdict() and the grader's JSON are unchanged
    return verdict


def run_check(name: str, fn, *, _watch: bool = True) -> Verdict:
    """The verdict for ``fn`` without printing or raising (used by the grader).

    An answer that is, or calls, one of the question's forbidden functions (:func:`forbidden`: the package's own
    answer) fails with one line, whatever it returns; ``_watch=False`` turns that off, for the package's tests that
    run the answer key's references through the check."""
    if name not in CHECKS:
        raise ValueError(f"name must be one of {sorted(CHECKS)}, got {name!r}")
    if fn is None:
        return Verdict(name, False, f"no function called {name} is defined: run its cell first")
    if not callable(fn):
        return Verdict(name, False, f"{name} must be a function, got {type(fn).__name__}")
    spec = CHECKS[name]
    cases = spec.cases()
    watch = CallWatch(forbidden(name) if _watch else [])
    if what := watch.is_forbidden(fn):        # ``q_sample = md.q_sample``: the check itself would call it
        return _called_the_package(name, 0, cases[0].label, what)
    for k, case in enumerate(cases):
        if spec.checker is None:
            expected = spec.reference(**_clone(case.inputs))
        error = None
        try:
            with watch:       # on while the answer runs, a generator's body included
                if spec.checker is None:
                    got = fn(**_clone(case.inputs))
                    if isinstance(got, Iterator):        # a generator runs only when read: read it here
                        got = list(got)
                else:
                    outcome = spec.checker(fn, **_clone(case.inputs))
        except Exception as e:  # the learner's code may fail in any way: report it in one line
            error = e
        if watch.caught:
            return _called_the_package(name, k, case.label, watch.caught)
        if isinstance(error, NotImplementedError):
            return _failed(name, k, case.label, "not implemented yet", None,
                           "not implemented yet (replace the `raise NotImplementedError` with your code)")
        if error is not None:
            msg = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
            hint = BROADCAST_HINT if "size of tensor" in str(error) or "broadcast" in str(error) else "read the error and the docstring"
            return _failed(name, k, case.label, f"your function raised {msg}", hint,
                           f"on {case.label}, your function raised {msg}. Hint: {hint}")
        if spec.checker is not None:
            if outcome is None:
                continue
            problem, hint = outcome
            return _failed(name, k, case.label, problem, hint,
                           f"on {case.label}, {problem}. Hint: {hint or 'compare your code with the algorithm, step by step'}")
        problem = _compare(expected, got, spec)
        if problem is None:
            continue
        for hint, mistake in spec.mistakes.items():
            try:
                wrong = mistake(**_clone(case.inputs))
            except Exception:
                continue
            if _compare(wrong, got, spec) is None:
                return _failed(name, k, case.label, problem, hint, f"on {case.label}, {problem}. Hint: {hint}")
        return _failed(name, k, case.label, problem, None, f"on {case.label}, {problem}. Hint: {_default_hint(problem)}")
    _LAST_FAILURE.pop(name, None)
    _RUNG.pop(name, None)
    return Verdict(name, True, f"correct on all {len(cases)} cases ({'; '.join(c.label for c in cases)})", len(cases))


def _called_the_package(name, k, label, what) -> Verdict:
    """The verdict for an answer that called a forbidden function (:mod:`minddim.grading.watch`): no points."""
    return _failed(name, k, label, _CALLED + what, None,
                   f"your answer calls {what} (the package's own answer); write it yourself: no points")


def _default_hint(problem: str) -> str:
    """The hint for a wrong answer that matches none of the known mistakes, from what kind of difference it is."""
    if "expected dtype" in problem:
        return ("the schedule's tensors are float64: cast what you take from them to the input's dtype "
                "(e.g. schedule.alpha_bars[t].to(x.dtype))")
    if "expected shape" in problem:
        return "return the shape the question and the docstring ask for"
    return "compare your code with the equation the question names, term by term"


def _failed(name, k, label, problem, hint, message) -> Verdict:
    """The failed verdict, remembered for the hint ladder (the last failure of each question)."""
    _LAST_FAILURE[name] = (label, problem, hint)
    return Verdict(name, False, message, k)


class Hint(str):
    """A rung of the hint ladder: :func:`hint` has printed it, so a cell ending in ``hint(...)`` shows it once."""

    def _ipython_display_(self):
        pass


def hint(name: str) -> Hint:
    """The next hint for question ``name`` after a failed check in this kernel: first what the quantity means,
    then which equation and notebook section derive it, then which mistake the last failed answer matched.
    Never the solution's code.  Prints the hint (one line) and returns it."""
    if name not in CHECKS:
        raise ValueError(f"name must be one of {sorted(CHECKS)}, got {name!r}")
    spec = CHECKS[name]
    if name not in _LAST_FAILURE:
        text = (f"no failed check of {name} in this session yet: write your answer, run its check cell, and ask "
                f"for a hint if it fails")
    else:
        rung = min(_RUNG.get(name, 0) + 1, 3)
        _RUNG[name] = rung
        meaning, where = (tuple(spec.hints) + ("", ""))[:2]
        if rung == 1:
            text = f"hint 1/3 for {name} (what it means): {meaning or 'read the question and the docstring again'}"
        elif rung == 2:
            text = f"hint 2/3 for {name} (where it is derived): {where or 'the notebook section the question names'}"
        else:
            label, problem, matched = _LAST_FAILURE[name]
            if problem == "not implemented yet":
                what = "your last answer was not implemented yet (it still raises NotImplementedError)"
            elif problem.startswith(_CALLED):
                what = (f"your last answer called {problem[len(_CALLED):]}, the package's own answer, so it was not "
                        f"graded: compute it yourself from the equation")
            elif matched:
                what = f"your last answer, on {label}, matched a known mistake: {matched}"
            else:
                what = (f"your last answer, on {label}, matched none of the known mistakes ({problem}): compare "
                        f"it with the equation term by term")
            text = f"hint 3/3 for {name} (your last answer): {what}"
    print(text)
    return Hint(text)


def check_json(name: str, fn) -> str:
    """One line ``MINDDIM_VERDICT {json}`` for the grader; never raises."""
    try:
        v = run_check(name, fn)
    except Exception as e:  # pragma: no cover - a bug in a check must not crash the grader
        v = Verdict(name, False, f"the check itself failed: {type(e).__name__}: {e}")
    return "MINDDIM_VERDICT " + json.dumps(asdict(v))


def _clone(inputs: dict) -> dict:
    """Fresh copies for each call; a generator is given as "seed:N" and made anew, so every call draws the
    same numbers."""
    out = {}
    for k, v in inputs.items():
        if isinstance(v, str) and v.startswith("seed:"):
            v = torch.Generator().manual_seed(int(v[5:]))
        out[k] = v.clone() if isinstance(v, torch.Tensor) else v
    return out


def _fmt(v) -> str:
    if isinstance(v, torch.Tensor):
        flat = v.detach().reshape(-1)
        head = ", ".join(f"{x:.4g}" for x in flat[:3].tolist())
        return f"[{head}{', ...' if flat.numel() > 3 else ''}]"
    return repr(v)


def _compare(expected, got, spec: Spec) -> str | None:
    """None if ``got`` matches ``expected``, else a short description of the difference."""
    if isinstance(expected, tuple):
        if not isinstance(got, (tuple, list)) or len(got) != len(expected):
            return f"expected a tuple of {len(expected)} values, got {type(got).__name__}"
        for i, (e, g) in enumerate(zip(expected, got)):
            p = _compare(e, g, spec)
            if p is not None:
                return f"item {i} of the tuple: {p}"
        return None
    if isinstance(expected, torch.Tensor):
        if not isinstance(got, torch.Tensor):
            return f"expected a tensor, got {type(got).__name__}"
        e, g = expected, got
        if e.dim() > 0 and g.shape != e.shape:
            # a value that broadcasts to the other's shape is the same value (a variance of shape (batch, 1) or at
            # x's full shape); anything else, a batch of another size included, is a wrong shape
            shape = _broadcast_shape(g.shape, e.shape)
            if (g.numel() == e.numel() or g.dim() == 0 or g.shape[0] != e.shape[0]
                    or shape not in (tuple(g.shape), tuple(e.shape))):
                return f"expected shape {tuple(e.shape)}, got {tuple(g.shape)}"
            e, g = e.expand(shape), g.expand(shape)
        if e.dtype.is_floating_point and g.dtype != e.dtype and e.dim() > 0:
            return f"expected dtype {e.dtype}, got {g.dtype} (compute in the dtype of the input)"
        if e.dtype.is_floating_point and not torch.isfinite(g).all() and not torch.equal(
                torch.isfinite(g), torch.isfinite(e)):      # NaN or inf only where the expected value has one too
            return f"expected finite values such as {_fmt(e)}, got NaN or inf: {_fmt(g)}"
        ok = (torch.equal(e, g) if not e.dtype.is_floating_point
              else torch.allclose(g.to(e.dtype), e, rtol=spec.rtol, atol=spec.atol, equal_nan=True))
        return None if ok else f"expected {_fmt(e)}, got {_fmt(g)}"
    if isinstance(expected, list):
        return None if list(got) == list(expected) else f"expected {expected}, got {got}"
    if isinstance(expected, float):
        ok = isinstance(got, (int, float)) or (isinstance(got, torch.Tensor) and got.numel() == 1)
        if not ok:
            return f"expected a number, got {type(got).__name__}"
        return None if math.isclose(float(got), expected, rel_tol=spec.rtol, abs_tol=spec.atol) else \
            f"expected {expected:.5g}, got {float(got):.5g}"
    return None if got == expected else f"expected {expected!r}, got {got!r}"


def _broadcast_shape(a, b) -> tuple | None:
    try:
        return tuple(torch.broadcast_shapes(a, b))
    except RuntimeError:
        return None
