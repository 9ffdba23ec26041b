"""nbgrader itself runs the course's graded exercises and gives the package grader's points.

A course directory in nbgrader's layout is built in a temporary folder (``source/<assignment>/<notebook>.ipynb``
from ``solutions/``, ``nbgrader_config.py`` with the course id and the gradebook in that folder); nbgrader's
own ``generate_assignment`` makes the student version, and ``autograde`` grades three submissions of each
assignment: the solution (solved), the released student version (untouched) and the solution with its last
answer put back to the stub (one question wrong). For every question nbgrader's points (the gradebook) equal
those of :func:`minddim.grading.grade_notebook` on the same file: full marks solved, zero untouched.

Both graders run the notebooks in a kernel of this interpreter (a ``python3`` kernel spec written to a
temporary ``JUPYTER_PATH``, which comes before any user-wide one), with one torch thread. nbgrader runs in a
subprocess (``python -m nbgrader``, as an instructor runs it) with this interpreter's ``bin/`` first on
``PATH``: nbgrader calls the ``alembic`` executable to set up its database.

Each notebook is executed six times (nbgrader and the package, three submissions), ~4 s each, mostly kernel
start-up and importing torch: two assignments by default (the first exercise and the newest) keep the file
near a minute; ``MINDDIM_NBGRADER_ALL=1`` grades every exercise in ``solutions/`` (measured: 7 exercises
~3 min on 2 busy cores).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from minddim import grading
from minddim.grading import generator as exercises

try:
    from nbgrader.api import Gradebook
except ImportError as e:        # not installed, or installed but broken (tests/test_environment.py asks for it)
    pytest.skip(f"nbgrader cannot be imported ({type(e).__name__}: {e}); it comes with the dev extra: "
                "pip install -c constraints.txt -e '.[dev]'", allow_module_level=True)

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = ROOT / "solutions"
COURSE_ID = "minddim"
TIMEOUT = 120          # seconds per cell, both graders (as in tests/test_exercises_and_grader.py)
DEFAULT = ("01_forward_process", "09_guidance")
STUDENTS = ("solved", "untouched", "one_wrong")


def _assignment(path: Path) -> str:
    return nbformat.read(path, as_version=4).metadata["minddim"]["assignment"]


def _chosen() -> list[Path]:
    every = sorted(SOLUTIONS.glob("[0-9][0-9]_*.ipynb"))
    if os.environ.get("MINDDIM_NBGRADER_ALL"):
        return every
    return [p for p in every if p.stem in DEFAULT] or every[:2]


CHOSEN = _chosen()
ASSIGNMENTS = [_assignment(p) for p in CHOSEN]


def _env(tmp: Path) -> dict:
    """This interpreter's kernel and executables, no user-wide Jupyter configuration, one torch thread."""
    kernels = tmp / "jupyter" / "kernels" / "python3"
    kernels.mkdir(parents=True, exist_ok=True)
    (kernels / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (minddim, test)", "language": "python"}))
    (tmp / "jupyter_config").mkdir(exist_ok=True)
    env = dict(os.environ)
    env.update(JUPYTER_PATH=str(tmp / "jupyter"), JUPYTER_CONFIG_DIR=str(tmp / "jupyter_config"),
               PATH=str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", ""),
               OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    return env


def _nbgrader(args, course: Path, env: dict) -> str:
    proc = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, env=env, capture_output=True,
                          text=True, timeout=1800)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{log[-4000:]}"
    assert "[ERROR]" not in log and "| ERROR]" not in log, log[-4000:]
    return log


def _one_wrong(solution, release):
    """The solution with its last answer cell replaced by the stub nbgrader released for it."""
    nb = nbformat.from_dict(json.loads(json.dumps(solution)))
    stubs = {c.metadata["nbgrader"]["grade_id"]: c.source for c in release.cells
             if c.metadata.get("nbgrader", {}).get("solution")}
    last = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution")][-1]
    last.source = stubs[last.metadata["nbgrader"]["grade_id"]]
    return nb


@pytest.fixture(scope="module")
def course(tmp_path_factory, monkeypatch_module):
    tmp = tmp_path_factory.mktemp("nbgrader")
    env = _env(tmp)
    for name in ("JUPYTER_PATH", "JUPYTER_CONFIG_DIR", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch_module.setenv(name, env[name])          # the package grader's kernel: the same spec
    snapshot = tmp / "solutions"             # both graders and the generator read the same sources
    snapshot.mkdir()
    for f in SOLUTIONS.glob("[0-9][0-9]_*.*"):
        (snapshot / f.name).write_bytes(f.read_bytes())
    root = tmp / "course"
    (root / "source").mkdir(parents=True)
    stub = {"python": "# YOUR CODE HERE\n" + exercises.STUB}
    (root / "nbgrader_config.py").write_text(
        "c = get_config()\n"
        f"c.CourseDirectory.course_id = {COURSE_ID!r}\n"
        f"c.CourseDirectory.root = {str(root)!r}\n"
        f"c.CourseDirectory.db_url = {'sqlite:///' + str(root / 'gradebook.db')!r}\n"
        "# the stub minddim.exercises writes, so the released notebooks are exercises/ cell for cell\n"
        f"c.ClearSolutions.code_stub = {stub!r}\n"
        f"c.Execute.timeout = {TIMEOUT}\n")
    for sol, a in zip(CHOSEN, ASSIGNMENTS):
        (root / "source" / a).mkdir()
        (root / "source" / a / sol.name).write_bytes((snapshot / sol.name).read_bytes())
    log = _nbgrader(["generate_assignment", "*"], root, env)
    assert "| WARNING]" not in log, f"nbgrader questions the metadata:\n{log[-4000:]}"

    for sol, a in zip(CHOSEN, ASSIGNMENTS):
        solution = nbformat.read(snapshot / sol.name, as_version=4)
        release = nbformat.read(root / "release" / a / sol.name, as_version=4)
        for student, nb in zip(STUDENTS, (solution, release, _one_wrong(solution, release))):
            (root / "submitted" / student / a).mkdir(parents=True)
            nbformat.write(nb, root / "submitted" / student / a / sol.name)
    _nbgrader(["autograde", "*"], root, env)

    points = {}
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}", course_id=COURSE_ID) as gb:
        for sol, a in zip(CHOSEN, ASSIGNMENTS):
            for student in STUDENTS:
                sub = gb.find_submission_notebook(sol.stem, a, student)
                points[a, student] = {
                    "score": sub.score, "max_score": sub.max_score, "needs_manual_grade": sub.needs_manual_grade,
                    "questions": {g.name.removeprefix("check_"): g.score for g in sub.grades}}
    return {"root": root, "solutions": snapshot, "points": points}


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def test_at_least_two_exercises_are_graded():
    assert len(ASSIGNMENTS) >= 2 and len(set(ASSIGNMENTS)) == len(ASSIGNMENTS)
    assert all(a == p.stem for a, p in zip(ASSIGNMENTS, CHOSEN)), "minddim.assignment must name the notebook"


@pytest.mark.parametrize("sol", CHOSEN, ids=lambda p: p.stem)
def test_generate_assignment_releases_the_exercise_with_locked_checksummed_checks(course, sol):
    """nbgrader accepts the metadata (schema 3) and releases exactly what `python -m minddim exercises` makes;
    its gradebook holds the package's questions and points."""
    a = _assignment(sol)
    release = nbformat.read(course["root"] / "release" / a / sol.name, as_version=4)
    source = course["solutions"] / sol.name
    _, made = exercises.render(source.with_suffix(".py"))
    made = nbformat.reads(made, as_version=4)
    assert [(c.cell_type, c.source) for c in release.cells] == [(c.cell_type, c.source) for c in made.cells]
    assert "### BEGIN SOLUTION" not in json.dumps(release)
    checks = [c for c in release.cells if c.metadata.get("nbgrader", {}).get("grade")]
    assert checks and all(c.metadata["nbgrader"]["locked"] and c.metadata["nbgrader"].get("checksum")
                          and c.metadata.get("editable") is False for c in checks)
    qs = dict(grading.questions(source.with_suffix(".py")))
    assert {c.metadata["nbgrader"]["grade_id"].removeprefix("check_"): c.metadata["nbgrader"]["points"]
            for c in checks} == qs
    assert course["points"][a, "solved"]["max_score"] == sum(qs.values())


@pytest.mark.parametrize("student", STUDENTS)
@pytest.mark.parametrize("sol", CHOSEN, ids=lambda p: p.stem)
def test_autograde_gives_the_package_graders_points(course, sol, student):
    a = _assignment(sol)
    ours = grading.grade_notebook(course["root"] / "submitted" / student / a / sol.name,
                                  solutions=course["solutions"], timeout=TIMEOUT)
    theirs = course["points"][a, student]
    print(f"{a} {student}: nbgrader {theirs['score']:g}/{theirs['max_score']:g} {theirs['questions']}, "
          f"package {ours['score']}/{ours['max_score']}")
    assert theirs["questions"] == {q["name"]: q["points"] for q in ours["questions"]}, grading.format_report([ours])
    assert (theirs["score"], theirs["max_score"]) == (ours["score"], ours["max_score"])
    assert not theirs["needs_manual_grade"]
    expected = {"solved": ours["max_score"], "untouched": 0}
    if student in expected:
        assert ours["score"] == expected[student], grading.format_report([ours])
    else:
        assert 0 < ours["score"] < ours["max_score"], grading.format_report([ours])
