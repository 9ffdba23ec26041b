"""Generate ``exercises/`` from ``solutions/``, the single source of the graded exercises.

Solution regions are marked as nbgrader marks them::

    ### BEGIN SOLUTION
    ...
    ### END SOLUTION

and become ``# YOUR CODE HERE`` / ``raise NotImplementedError(...)`` stubs with the same indentation, so
each function keeps its signature and docstring. Nothing else changes. The ``.py`` (jupytext percent
format) is the source; each exercise is written as a ``.py`` / ``.ipynb`` pair, the notebook without
outputs, both written to a temporary file and renamed into place.
"""

from __future__ import annotations

import re
from pathlib import Path

from ._io import atomic_path

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
_REGION = re.compile(r"^(?P<indent>[ \t]*)### BEGIN SOLUTION[ \t]*\n(?P<body>.*?)^[ \t]*### END SOLUTION[ \t]*(\n|\Z)",
                     re.M | re.S)
STUB = 'raise NotImplementedError("not implemented yet: replace this line with your code")'


def strip_solutions(text: str, name: str = "text") -> str:
    """Replace every solution region of ``text`` by a stub; a region left open or closed twice is an error."""
    if text.count(BEGIN) != text.count(END):
        raise ValueError(f"{name}: {text.count(BEGIN)} '{BEGIN}' but {text.count(END)} '{END}' markers")
    out = _REGION.sub(lambda m: f"{m['indent']}# YOUR CODE HERE\n{m['indent']}{STUB}\n", text)
    if BEGIN in out or END in out:
        raise ValueError(f"{name}: solution markers out of order or nested")
    return out


def render(solution_py: Path) -> tuple[str, str]:
    """The exercise's (.py text, .ipynb text) for one solution notebook."""
    import jupytext

    text = strip_solutions(solution_py.read_text(encoding="utf-8"), solution_py.name)
    nb = jupytext.reads(text, fmt="py:percent")
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i}"          # stable ids, so regenerating changes nothing
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return text, jupytext.writes(nb, fmt="ipynb")


def make_exercises(solutions: str | Path = "solutions", exercises: str | Path = "exercises") -> list[Path]:
    """Write ``exercises/NN_*.py`` and ``.ipynb`` for every ``solutions/NN_*.py``; returns the paths written."""
    solutions, exercises = Path(solutions), Path(exercises)
    sources = sorted(solutions.glob("[0-9][0-9]_*.py"))
    if not sources:
        raise FileNotFoundError(f"no solution notebooks (NN_*.py) in {solutions}")
    rendered = {src: render(src) for src in sources}      # fail before writing anything
    exercises.mkdir(parents=True, exist_ok=True)
    written = []
    for src, (py, ipynb) in rendered.items():
        for suffix, text in ((".py", py), (".ipynb", ipynb)):
            path = exercises / (src.stem + suffix)
            with atomic_path(path) as tmp:
                tmp.write_text(text, encoding="utf-8")
            written.append(path)
    return written
