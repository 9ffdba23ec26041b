"""The notebook grader: points per question for submitted exercise notebooks.

:func:`grade_notebook` runs a submitted notebook in a fresh kernel, skipping the learner's check cells,
then runs the package's own check (:mod:`minddim.grading.runner`) for every graded question of the matching
solution notebook in ``solutions/``; :func:`format_report` turns the reports into a table
(``python -m minddim grade``).
"""

from __future__ import annotations

import json
from pathlib import Path



# -- the notebook grader ------------------------------------------------------------------------------------
MAX_OUTPUT_CHARS = 20_000        # per cell: a flood of prints is cut, not stored


def questions(solution_notebook) -> list[tuple[str, int]]:
    """(name, points) of every graded check cell (nbgrader ``grade: true``, ``grade_id: check_<name>``) of a
    solution notebook, read from its jupytext ``.py`` or its ``.ipynb``."""
    import jupytext

    nb = jupytext.read(solution_notebook)
    return [(name, int(cell.metadata["nbgrader"].get("points", 1))) for cell in nb.cells
            if (name := _graded_question(cell)) is not None]


def _graded_question(cell) -> str | None:
    """The question an nbgrader graded check cell (``grade: true``, ``grade_id: check_<name>``) checks, else None."""
    meta = cell.get("metadata", {}).get("nbgrader", {})
    grade_id = str(meta.get("grade_id", ""))
    return grade_id[len("check_"):] if meta.get("grade") and grade_id.startswith("check_") else None


def _solution_for(nb, path: Path, solutions: Path) -> Path:
    name = nb.metadata.get("minddim", {}).get("assignment")
    candidates = sorted(solutions.glob("[0-9][0-9]_*.py"))
    for c in candidates:
        if c.stem == name:
            return c
    for c in sorted(candidates, key=lambda p: -len(p.stem)):   # fall back on the file name
        if path.stem.startswith(c.stem):
            return c
    raise ValueError(f"{path}: cannot tell which assignment this is (no 'minddim.assignment' metadata and no "
                     f"solution notebook in {solutions} whose name starts the file name)")


def _is_check_cell(cell, name: str | None = None) -> bool:
    graded = _graded_question(cell)
    if graded is not None:
        return name is None or graded == name
    src = cell.get("source", "")
    return "grading.check(" in src and (name is None or f'check("{name}"' in src)


def grade_notebook(path, solutions=None, timeout: float = 60.0) -> dict:
    """Grade one submitted notebook; never raises for anything the notebook does.

    Runs every cell except the check cells in a fresh kernel (``timeout`` seconds per cell; a cell that
    raises or times out is recorded and the run goes on), then runs the package's own check for each
    question in that kernel.  A question scores its points only if its check cell is still there and the
    check passes.  Returns ``{"notebook", "assignment", "questions": [{name, points, max_points, passed,
    reason}], "score", "max_score", "errors"}``.
    """
    import nbformat

    path = Path(path)
    solutions = Path(solutions) if solutions is not None else Path(__file__).resolve().parents[2] / "solutions"
    report = {"notebook": str(path), "assignment": None, "questions": [], "score": 0, "max_score": 0, "errors": []}
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as e:
        report["errors"].append(f"cannot read the notebook: {type(e).__name__}: {e}")
        return report
    try:
        solution = _solution_for(nb, path, solutions)
    except ValueError as e:
        report["errors"].append(str(e))
        return report
    report["assignment"] = solution.stem
    qs = questions(solution)
    report["max_score"] = sum(p for _, p in qs)
    present = {name: any(_is_check_cell(c, name) for c in nb.cells) for name, _ in qs}
    verdicts = _run_and_check(nb, [n for n, _ in qs], timeout, report["errors"], path.parent)
    for name, pts in qs:
        v = verdicts.get(name)
        if not present[name]:
            passed, reason = False, f"the check cell for {name} was deleted"
        elif v is None:
            passed, reason = False, "the check could not run (see errors)"
        else:
            passed, reason = bool(v["passed"]), v["message"]
        report["questions"].append({"name": name, "points": pts if passed else 0, "max_points": pts,
                                    "passed": passed, "reason": reason})
    report["score"] = sum(q["points"] for q in report["questions"])
    return report


def _run_and_check(nb, names, timeout, errors, cwd) -> dict:
    """Execute the learner's cells (not the check cells), then one check per name; verdicts by name."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    class _CappedClient(NotebookClient):
        def output(self, outs, msg, display_id, cell_index):
            size = sum(len(str(o.get("text", ""))) + len(str(o.get("data", ""))) for o in outs)
            if size > MAX_OUTPUT_CHARS:
                return None                      # drop the flood
            return super().output(outs, msg, display_id, cell_index)

    work = nbformat.v4.new_notebook()
    work.metadata = nb.metadata
    work.cells = [nbformat.v4.new_code_cell(c.source) for c in nb.cells
                  if c.cell_type == "code" and not _is_check_cell(c)]
    start = len(work.cells)
    for name in names:
        work.cells.append(nbformat.v4.new_code_cell(
            f"from minddim import grading as __g\nprint(__g.check_json({name!r}, globals().get({name!r})))"))
    # the kernel logs at ERROR and above only: ipykernel's "Kernel is running over TCP without encryption" warning
    # (the kernel listens on localhost, started by this process) would otherwise be printed for every notebook
    client = _CappedClient(work, timeout=timeout, kernel_name="python3", allow_errors=True,
                           interrupt_on_timeout=True, resources={"metadata": {"path": str(cwd)}},
                           extra_arguments=["--IPKernelApp.log_level=ERROR"])
    verdicts = {}

    def fail(name, why):
        verdicts[name] = {"name": name, "passed": False, "message": why}

    try:
        with client.setup_kernel():
            for i, cell in enumerate(work.cells):
                name = names[i - start] if i >= start else None
                label = f"cell {i + 1}" if name is None else f"the check of {name}"
                try:
                    client.execute_cell(cell, i)
                except (CellTimeoutError, TimeoutError):
                    cell.outputs = [nbformat.v4.new_output("error", ename="KeyboardInterrupt", evalue="", traceback=[])]
                except CellExecutionError as e:
                    errors.append(f"{label}: {str(e).splitlines()[-1][:200] if str(e) else 'error'}")
                except DeadKernelError:
                    errors.append(f"the kernel died during {label}; the remaining cells did not run")
                    break
                for o in cell.outputs:
                    if o.output_type != "error":
                        continue
                    why = (f"timed out after {timeout:g} s (an endless loop?)" if o.ename == "KeyboardInterrupt"
                           else f"raised {o.ename}: {str(o.evalue)[:200]}")
                    errors.append(f"{label} {why}")
                    if name is not None:
                        fail(name, why)
                if name is not None and name not in verdicts:
                    text = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
                    lines = [ln for ln in text.splitlines() if ln.startswith("MINDDIM_VERDICT ")]
                    if lines:
                        verdicts[name] = json.loads(lines[-1][len("MINDDIM_VERDICT "):])
                    else:
                        fail(name, "the check printed no verdict (was print or the package shadowed?)")
    except Exception as e:  # kernel start-up failures and the like: report, do not crash
        errors.append(f"the notebook could not be run: {type(e).__name__}: {e}")
    return verdicts


REPORT_WIDTH = 110               # characters per line of the table; longer reasons are wrapped, never cut


def format_report(reports: list, width: int = REPORT_WIDTH) -> str:
    """A plain-text table: one row per question (its reason wrapped under itself, whole), a total per notebook."""
    import textwrap

    lines = []
    for r in reports:
        lines.append(f"{r['notebook']}  ({r['assignment'] or 'unknown assignment'})")
        for q in r["questions"]:
            head = f"  {q['name']:<20} {q['points']:>2}/{q['max_points']:<2} "
            lines += textwrap.wrap(q["reason"] or "", width, initial_indent=head,
                                   subsequent_indent=" " * len(head), break_on_hyphens=False) or [head.rstrip()]
        for e in r["errors"]:
            lines += textwrap.wrap(e, width, initial_indent="  ! ", subsequent_indent="    ", break_on_hyphens=False)
        lines.append(f"  {'total':<20} {r['score']:>2}/{r['max_score']}")
    return "\n".join(lines)
