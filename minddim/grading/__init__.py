"""The course's grading machinery, apart from the papers' mathematics.

- :mod:`~minddim.grading.spec`: what a question is (cases, the package's reference, the known mistakes);
- :mod:`~minddim.grading.keys`: the answer key, one module per exercise (``keys/ex03_epsilon_loss.py`` for
  ``solutions/03_epsilon_loss.py``);
- :mod:`~minddim.grading.runner`: running a check (``check``, ``hint``, one-line verdicts);
- :mod:`~minddim.grading.watch`: an answer that calls the package's own answer scores nothing;
- :mod:`~minddim.grading.notebook`: the notebook grader (``python -m minddim grade``);
- :mod:`~minddim.grading.generator`: ``exercises/`` from ``solutions/`` (``python -m minddim exercises``).

Notebooks call ``from minddim import grading; grading.check("q_sample", q_sample)``; after a failed check,
``grading.hint("q_sample")`` climbs the hint ladder (meaning, equation, the mistake the answer matched).
Imports run one way: keys -> spec; runner -> spec, watch; watch -> spec; this package -> all of them.
"""

from . import keys as _keys  # noqa: F401  (registers every question in CHECKS)
from .notebook import format_report, grade_notebook, questions
from .runner import CheckFailed, Hint, Verdict, check, check_json, hint, run_check
from .spec import CHECKS, Case, Spec

__all__ = ["CHECKS", "Case", "CheckFailed", "Hint", "Spec", "Verdict", "check", "check_json", "hint", "run_check",
           "questions", "grade_notebook", "format_report"]
