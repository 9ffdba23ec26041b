"""Generate ``exercises/`` from ``solutions/``, the single source of the graded exercises.

Solution regions are marked as nbgrader marks them::

    ### BEGIN SOLUTION
    ...
    ### END SOLUTION

and become ``# YOUR CODE HERE`` / ``raise NotImplementedError(...)`` stubs with the same indentation, so
each function keeps its signature and docstring. Nothing else changes. The ``.py`` (jupytext percent
format) is the source; each exercise is written as a ``.py`` / ``.ipynb`` pair, the notebook without
outputs, both written to a temporary file and renamed into place.

Learners work in ``exercises/`` (README, "Where to work"), so regenerating never destroys an answer: the generator
records what it wrote in ``exercises/.generated.json`` (a SHA-256 per file) and replaces a file only when it is
still what it wrote there (untouched, or merely stale because a solution changed). An exercise whose ``.py`` or
``.ipynb`` was edited since (a learner's answers, outputs, notes) is kept, pair and all, and reported, unless
``force``. The test suite's staleness check compares that record with what ``solutions/`` makes now, so it never
asks a learner to overwrite their work either.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import NamedTuple

from .._io import atomic_path

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


MANIFEST = ".generated.json"


class Written(NamedTuple):
    """What :func:`make_exercises` did: the files it wrote, and ``(path, why)`` for each file it kept."""
    written: list
    kept: list


def digest(text: str) -> str:
    """The SHA-256 of a file's text, as recorded in ``.generated.json``."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def manifest(exercises: str | Path = "exercises") -> dict:
    """``{file name: digest}`` of what the generator last wrote into ``exercises`` (empty when it never did)."""
    path = Path(exercises) / MANIFEST
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def edited(path: Path, record: dict) -> bool:
    """Whether ``path`` exists and is not what the generator last wrote there (someone changed it since)."""
    return path.is_file() and digest(path.read_text(encoding="utf-8")) != record.get(path.name)


def make_exercises(solutions: str | Path = "solutions", exercises: str | Path = "exercises", *,
                   force: bool = False) -> Written:
    """Write ``exercises/NN_*.py`` and ``.ipynb`` for every ``solutions/NN_*.py`` and record them in
    ``exercises/.generated.json``. An exercise with a file edited since the generator wrote it (or a file it did
    not write, when it differs from the new one) is kept as it is, and listed in ``kept``, unless ``force``."""
    solutions, exercises = Path(solutions), Path(exercises)
    sources = sorted(solutions.glob("[0-9][0-9]_*.py"))
    if not sources:
        raise FileNotFoundError(f"no solution notebooks (NN_*.py) in {solutions}")
    rendered = {src: render(src) for src in sources}      # fail before writing anything
    exercises.mkdir(parents=True, exist_ok=True)
    record = {name: d for name, d in manifest(exercises).items() if (exercises / name).is_file()}   # gone: forget
    written, kept = [], []
    for src, (py, ipynb) in rendered.items():
        pair = {exercises / (src.stem + ".py"): py, exercises / (src.stem + ".ipynb"): ipynb}
        changed = [p for p, text in pair.items() if edited(p, record) and p.read_text(encoding="utf-8") != text]
        if changed and not force:
            why = (f"{', '.join(p.name for p in changed)} changed since the generator wrote it (your answers?)")
            kept += [(p, why) for p in pair]
            continue
        for path, text in pair.items():
            with atomic_path(path) as tmp:
                tmp.write_text(text, encoding="utf-8")
            record[path.name] = digest(text)
            written.append(path)
    with atomic_path(exercises / MANIFEST) as tmp:
        tmp.write_text(json.dumps(dict(sorted(record.items())), indent=1) + "\n", encoding="utf-8")
    return Written(written, kept)


def status(solution_py: Path, exercises: str | Path = "exercises") -> dict:
    """Where exercise files stand against ``solution_py``, by file name: ``"current"`` (what the generator makes now,
    as it wrote it), ``"stale"`` (the generator last wrote something else: the solution changed since; running it
    replaces the file) or ``"edited"`` (changed since the generator wrote it: a learner's answers, which it keeps),
    ``"missing"``. What the test suite's staleness check reads."""
    exercises, record = Path(exercises), manifest(exercises)
    out = {}
    for path, text in zip((exercises / (solution_py.stem + s) for s in (".py", ".ipynb")), render(solution_py)):
        if not path.is_file():
            out[path.name] = "missing"
        elif edited(path, record):
            out[path.name] = "edited"
        else:
            out[path.name] = "current" if record.get(path.name) == digest(text) else "stale"
    return out
