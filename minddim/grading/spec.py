"""What a graded question is: its cases, the package's reference, the known mistakes (the answer key's data).

Each answer key module in :mod:`minddim.grading.keys` (one per exercise, named after it) calls :func:`register` for
its questions; :mod:`minddim.grading.runner` runs them.  A graded function that has a package counterpart uses its
signature (``q_sample``, ``ddim_step``, ...); the others (``middle_term``, ``training_step``, ``ode_orders``, ...) take
what their prompt names.  ``t`` is always an integer tensor of shape (batch,).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass
class Case:
    label: str
    inputs: dict


@dataclass
class Spec:
    cases: Callable[[], list]                 # () -> [Case]
    reference: Callable                       # (**inputs) -> output
    mistakes: dict                            # hint -> (**inputs) -> output
    rtol: float = 1e-5
    atol: float = 1e-6
    hints: tuple = ()                         # (what the quantity means, where it is derived): the ladder's rungs 1-2
    # a custom checker evaluates each case itself instead of comparing fn with the reference:
    # checker(fn, **inputs) -> None when the case passes, else (problem, hint or None); the problem says
    # what was expected and what came back, the hint names the mistake it diagnosed (None: none recognized)
    checker: Callable | None = None
    # package functions the answer must not call, besides the defaults (the public minddim function of the
    # question's name, where one exists, and the reference itself): paths below minddim, e.g. "sampling.sample"
    forbidden: tuple = ()


CHECKS: dict[str, Spec] = {}


def register(name: str, **kw) -> None:
    """Add question ``name`` to :data:`CHECKS` (called by the answer key modules)."""
    if name in CHECKS:
        raise ValueError(f"question {name!r} is registered twice")
    CHECKS[name] = Spec(**kw)
