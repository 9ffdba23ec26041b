"""Every notebook is a jupytext pair: the .py (percent format) that people edit and the .ipynb that
carries the executed outputs. A pair out of sync, or a notebook stored without its outputs, fails here;
the notebooks themselves are executed and compared by nbval (see pyproject.toml)."""

from pathlib import Path

import jupytext
import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
PAIRS = sorted(p for d in ("notebooks", "solutions", "exercises") for p in (ROOT / d).glob("[0-9][0-9]_*.py"))


def _cells(nb):
    return [(c.cell_type, c.source.strip()) for c in nb.cells]


def test_there_are_notebooks():
    assert len([p for p in PAIRS if p.parent.name == "notebooks"]) >= 5


@pytest.mark.parametrize("py", PAIRS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_pair_is_in_sync(py):
    ipynb = py.with_suffix(".ipynb")
    assert ipynb.exists(), f"{ipynb.name} is missing: run `jupytext --sync {py.relative_to(ROOT)}`"
    text = jupytext.read(py)
    stored = nbformat.read(ipynb, as_version=4)
    assert _cells(text) == _cells(stored), (
        f"{py.name} and {ipynb.name} differ: edit the .py, then `jupytext --sync` and re-execute")


@pytest.mark.parametrize("py", [p for p in PAIRS if p.parent.name == "notebooks"], ids=lambda p: p.stem)
def test_notebook_is_stored_executed(py):
    nb = nbformat.read(py.with_suffix(".ipynb"), as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    if nb.metadata.get("minddim", {}).get("requires_data"):
        # stored as it runs without its data set (07_cifar10): the first cell says so, the rest is not run
        said = "".join(o.get("text", "") for o in code[0].outputs)
        assert "is not present" in said and "skips" in said, said
        assert all(c.execution_count is None for c in code[1:])
        code = code[:1]
    assert all(c.execution_count is not None for c in code), "store the notebook executed, top to bottom"
    counts = [c.execution_count for c in code]
    assert counts == sorted(counts), "cells were executed out of order"
    assert not any(o.output_type == "error" for c in code for o in c.outputs)
