"""Exercises are generated from solutions; the grader scores solutions fully, untouched exercises at
zero, and survives hostile notebooks (raising, looping, flooding, wrong answers, deleted check cells)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from minddim import grading
from minddim.grading import generator as exercises

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = sorted((ROOT / "solutions").glob("[0-9][0-9]_*.py"))


def test_there_are_nine_solution_notebooks_with_2_to_7_graded_questions():
    assert len(SOLUTIONS) == 9
    for sol in SOLUTIONS:
        qs = grading.questions(sol)
        assert 2 <= len(qs) <= 7, sol.name
        assert all(name in grading.CHECKS and pts >= 1 for name, pts in qs)


@pytest.mark.parametrize("sol", SOLUTIONS, ids=lambda p: p.stem)
def test_committed_exercises_are_what_the_generator_makes(sol):
    """The staleness check. A learner works in exercises/ (README, "Where to work"): an exercise edited since the
    generator wrote it (exercises/.generated.json) holds their answers and is not compared (in CI, where nobody
    solves exercises, an edit fails); what must hold everywhere is that the generator's record is what solutions/
    makes now, and regenerating replaces only unedited files."""
    state = exercises.status(sol, ROOT / "exercises")
    edited = [name for name, s in state.items() if s == "edited"]
    if edited:                                     # the generator keeps the pair: nothing to ask of the learner
        assert not os.environ.get("CI"), f"exercises/{', '.join(edited)} edited by hand: exercises/ is generated"
        pytest.skip(f"exercises/{', '.join(edited)} changed since generated (your answers): not compared; "
                    f"`python -m minddim exercises` keeps it")
    stale = [name for name, s in state.items() if s in ("stale", "missing")]
    assert not stale, (f"exercises/{', '.join(stale)}: solutions/{sol.name} changed after the generator last ran; "
                       f"run `python -m minddim exercises` (it replaces only exercises nobody has edited)")
    py, ipynb = exercises.render(sol)
    ex = ROOT / "exercises" / sol.name
    assert ex.read_text() == py
    made, stored = nbformat.reads(ipynb, as_version=4), nbformat.read(ex.with_suffix(".ipynb"), as_version=4)
    assert [(c.cell_type, c.source, c.metadata) for c in made.cells] == \
           [(c.cell_type, c.source, c.metadata) for c in stored.cells]
    assert all(not c.get("outputs") for c in stored.cells), "exercises are stored without outputs"


def test_stubs_keep_signature_and_docstring_and_change_nothing_else():
    src = (ROOT / "solutions" / "01_forward_process.py").read_text()
    out = exercises.strip_solutions(src)
    assert "### BEGIN SOLUTION" not in out and "torch.cumprod" not in out
    assert 'def alpha_bars(betas):\n    """alpha-bar_t' in out
    assert "    # YOUR CODE HERE\n    raise NotImplementedError(" in out
    before, after = src.split("### BEGIN SOLUTION")[0], out.split("# YOUR CODE HERE")[0]
    assert before.rstrip(" ") == after.rstrip(" ")
    with pytest.raises(ValueError, match="markers"):
        exercises.strip_solutions("### BEGIN SOLUTION\nx = 1\n")


def test_generator_writes_nothing_when_a_source_is_broken(tmp_path):
    (tmp_path / "sol").mkdir()
    (tmp_path / "sol" / "01_ok.py").write_text("# %%\nx = 1\n")
    (tmp_path / "sol" / "02_bad.py").write_text("# %%\n### BEGIN SOLUTION\nx = 1\n")
    with pytest.raises(ValueError):
        exercises.make_exercises(tmp_path / "sol", tmp_path / "ex")
    assert not (tmp_path / "ex").exists() or not any((tmp_path / "ex").iterdir())


@pytest.mark.parametrize("sol", SOLUTIONS, ids=lambda p: p.stem)
def test_solution_scores_full_marks_and_exercise_scores_zero(sol):
    full = grading.grade_notebook(sol.with_suffix(".ipynb"), timeout=120)
    assert full["score"] == full["max_score"] > 0, grading.format_report([full])
    zero = grading.grade_notebook(ROOT / "exercises" / sol.with_suffix(".ipynb").name, timeout=120)
    assert zero["score"] == 0 and zero["max_score"] == full["max_score"]
    assert all("not implemented yet" in q["reason"] for q in zero["questions"]), grading.format_report([zero])


def _cell_index(nb, grade_id):
    return next(i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def _grade_patched(tmp_path, **sources):
    """Grade solution 01 with the cells of the given grade_ids replaced by the given sources: the report's questions
    by name, and the report."""
    nb = nbformat.read(ROOT / "solutions" / "01_forward_process.ipynb", as_version=4)
    for grade_id, source in sources.items():
        nb.cells[_cell_index(nb, grade_id)].source = source
    nbformat.write(nb, tmp_path / "sub.ipynb")
    report = grading.grade_notebook(tmp_path / "sub.ipynb", timeout=30)
    return {q["name"]: q for q in report["questions"]}, report


def test_grader_survives_a_hostile_notebook(tmp_path):
    nb = nbformat.read(ROOT / "solutions" / "01_forward_process.ipynb", as_version=4)
    nb.cells[_cell_index(nb, "q_sample")].source = (
        "def q_sample(x0, t, schedule, noise):\n    return (x0 + noise).sum(-1)\n")          # wrong shape
    nb.cells[_cell_index(nb, "q_step")].source = (
        "def q_step(x_prev, t, schedule, noise):\n    while True:\n        pass\n")            # endless loop
    nb.cells[_cell_index(nb, "decorrelation_time")].source = (
        "def decorrelation_time(schedule, var, level):\n    return 'soon'\n")                  # wrong type
    del nb.cells[_cell_index(nb, "check_alpha_bars")]                                        # deleted check
    nb.cells.insert(3, nbformat.v4.new_code_cell("1 / 0"))                                   # raises
    nb.cells.insert(4, nbformat.v4.new_code_cell("for i in range(200000):\n    print('flood', i)"))
    nb.cells.insert(5, nbformat.v4.new_code_cell("while True:\n    pass"))                  # loops at top level
    path = tmp_path / "01_forward_process_alice.ipynb"
    nbformat.write(nb, path)
    report = grading.grade_notebook(path, timeout=5)
    by = {q["name"]: q for q in report["questions"]}
    assert report["score"] == 0 and report["max_score"] == 6
    assert "deleted" in by["alpha_bars"]["reason"]
    assert "shape" in by["q_sample"]["reason"]
    assert "timed out" in by["q_step"]["reason"]
    errors = " | ".join(report["errors"])
    assert "ZeroDivisionError" in errors and "timed out" in errors


def test_nan_and_wrong_dtype_answers_score_zero_with_the_reason(tmp_path):
    by, report = _grade_patched(
        tmp_path, q_step="def q_step(x_prev, t, schedule, noise):\n    return x_prev * float('nan')\n",
        q_sample=("def q_sample(x0, t, schedule, noise):\n"
                  "    ab = schedule.alpha_bars[t].to(x0.dtype).view(-1, *[1] * (x0.dim() - 1))\n"
                  "    return (ab.sqrt() * x0 + (1 - ab).sqrt() * noise).half()\n"))
    assert by["alpha_bars"]["points"] == 1 and by["decorrelation_time"]["points"] == 3 and report["score"] == 4
    assert "NaN" in by["q_step"]["reason"] and "dtype" in by["q_sample"]["reason"]


def test_an_answer_that_calls_the_package_scores_zero_with_the_reason(tmp_path):
    by, report = _grade_patched(
        tmp_path, q_sample=("from minddim.diffusion import q_sample as _qs\n\n"
                            "def q_sample(x0, t, schedule, noise):\n    return _qs(x0, t, schedule, noise)\n"),
        q_step=("from minddim import grading as _g\n\n"
                "def q_step(x_prev, t, schedule, noise):\n"
                "    return _g.CHECKS['q_step'].reference(x_prev, t, schedule, noise)\n"))
    assert by["q_sample"]["points"] == 0 and by["q_step"]["points"] == 0
    assert by["q_sample"]["reason"] == ("your answer calls minddim.q_sample (the package's own answer); write it "
                                        "yourself: no points")
    assert "calls the answer key's reference for q_step" in by["q_step"]["reason"]
    assert report["score"] == report["max_score"] - by["q_sample"]["max_points"] - by["q_step"]["max_points"]


def test_grader_reports_unreadable_and_unknown_notebooks(tmp_path):
    bad = tmp_path / "01_forward_process.ipynb"
    bad.write_text("{ not json")
    assert "cannot read" in grading.grade_notebook(bad)["errors"][0]
    other = tmp_path / "99_other.ipynb"
    nbformat.write(nbformat.v4.new_notebook(), other)
    assert "cannot tell which assignment" in grading.grade_notebook(other)["errors"][0]


def test_grade_command_prints_a_table_and_json():
    path = str(ROOT / "exercises" / "05_subsequences_and_encoding.ipynb")
    out = subprocess.run([sys.executable, "-m", "minddim", "grade", path, "--json"], capture_output=True, text=True,
                         check=True, cwd=ROOT).stdout
    report = json.loads(out)
    assert report[0]["score"] == 0 and report[0]["max_score"] == 7
    done = subprocess.run([sys.executable, "-m", "minddim", "grade", path], capture_output=True, text=True,
                          check=True, cwd=ROOT)
    assert "total" in done.stdout and "0/7" in done.stdout
    assert "without encryption" not in done.stderr, "ipykernel's transport warning is not shown"
