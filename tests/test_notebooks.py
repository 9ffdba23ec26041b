"""Every notebook is a jupytext pair: the .py (percent format) that people edit and the .ipynb that
carries the executed outputs. A pair out of sync, or a notebook stored without its outputs, fails here;
the notebooks themselves are executed and compared by nbval (see pyproject.toml), with printed decimals
allowed to differ by two units of their last digit (conftest.py), which is tested here too."""

import re
from pathlib import Path

import jupytext
import nbformat
import pytest

from conftest import numbers_agree                    # the repository's root conftest.py, not tests/conftest.py

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
    assert all(c.execution_count is not None for c in code), "store the notebook executed, top to bottom"
    counts = [c.execution_count for c in code]
    assert counts == sorted(counts), "cells were executed out of order"
    assert not any(o.output_type == "error" for c in code for o in c.outputs)


# Printed decimals are compared to within two units of their last digit (the root conftest.py says why).


@pytest.mark.parametrize("ref, out", [
    # the five lines that differed between an Intel CPU with AMX and an AMD EPYC with AVX2
    ("MLP: SW 0.081, MMD^2 x 1000 3.120", "MLP: SW 0.081, MMD^2 x 1000 3.121"),
    ("      eps     simple              1.04   0.071        38.32", "      eps     simple              1.04   0.071        38.31"),
    ("       0.5  12.861   4.015  -0.312   1.918   1.000", "       0.5  12.861   4.015  -0.312   1.919   0.999"),
    ("   10   0.484           61.7", "   10   0.484           61.8"),
    ("max |sigma(eta=1)^2 - beta_tilde| over t = 1.6e-16", "max |sigma(eta=1)^2 - beta_tilde| over t = 1.7e-16"),
    ("   9.99 |", "  10.01 |"),                                     # a column that gains a digit, 2 units
])
def test_printed_numbers_agree_within_two_units_of_the_last_digit(ref, out):
    assert numbers_agree(ref, out) and numbers_agree(out, ref)


@pytest.mark.parametrize("ref, out", [
    ("SW 3.120", "SW 3.123"),                       # three units
    ("SW 0.312", "SW -0.312"),
    ("SW 1.00", "SW 1.000"),                        # printed to other places
    ("sure of 90 of these 100 samples", "sure of 91 of these 100 samples"),   # integers are exact
    ("SW 3.120", "MMD 3.120"),
    ("SW 3.120", "SW 3.120 3.120"),
    ("err 1.6e-16", "err 1.6e-15"),
    ("err 1.6e-16", "err 0.0"),
])
def test_printed_numbers_that_differ_do_not_agree(ref, out):
    assert not numbers_agree(ref, out)


def _notebook(path, source, stored):
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(source, execution_count=1)
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=stored)]
    nb.cells = [cell]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


def test_nbval_runs_with_the_tolerant_comparison(tmp_path):
    """The root conftest.py really changes what nbval accepts: a stored 3.121 passes for a printed 3.120, a
    stored 3.125 and a stored "3.12" fail."""
    import os
    import subprocess
    import sys

    for name, stored in (("near", "x = 3.121 (n = 7)\n"), ("far", "x = 3.125 (n = 7)\n"),
                         ("places", "x = 3.12 (n = 7)\n"), ("count", "x = 3.120 (n = 8)\n")):
        _notebook(tmp_path / f"{name}.ipynb", 'print(f"x = {3.1204:.3f} (n = 7)")', stored)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")          # not the repository's addopts
    run = subprocess.run([sys.executable, "-m", "pytest", "-c", str(tmp_path / "pytest.ini"), "-p", "conftest",
                          "--nbval", "--nbval-current-env", "-q", "-rA", "-p", "no:cacheprovider", str(tmp_path)],
                         cwd=ROOT, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    report = run.stdout
    assert "PASSED" in report and "near.ipynb::Cell 0" in report, report[-3000:]
    passed = {line.split()[1].split("::")[0].split("/")[-1] for line in report.splitlines() if line.startswith("PASSED")}
    failed = {line.split()[1].split("::")[0].split("/")[-1] for line in report.splitlines() if line.startswith("FAILED")}
    assert passed == {"near.ipynb"} and failed == {"far.ipynb", "places.ipynb", "count.ipynb"}, report[-3000:]


def test_side_by_side_notebooks_keep_their_cells_together_with_one_thread_each(tmp_path):
    """Under the repository's own options (pytest-xdist, --dist loadfile), a notebook's cells run in order in
    one kernel even when two notebooks run side by side, and each kernel has one torch thread (conftest.py)."""
    import os
    import subprocess
    import sys

    for name in ("a", "b", "c"):
        nb = nbformat.v4.new_notebook()
        sources = ["import torch\nx = 20", "x += 1", 'print("threads", torch.get_num_threads(), "x", x)']
        nb.cells = [nbformat.v4.new_code_cell(src, execution_count=k + 1) for k, src in enumerate(sources)]
        nb.cells[-1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="threads 1 x 21\n")]
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(nb, tmp_path / f"{name}.ipynb")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_XDIST", "OMP_", "MKL_"))}
    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "conftest", "-p", "no:cacheprovider", "-v",
                          "-n", "2", "--rootdir", str(ROOT), "-c", str(ROOT / "pyproject.toml"), str(tmp_path)],
                         cwd=ROOT, capture_output=True, text=True, timeout=300, env={**env, "PYTHONPATH": str(ROOT)})
    report = run.stdout
    assert run.returncode == 0 and "9 passed" in report, report[-3000:]
    ran_on = re.findall(r"^\[(gw\d)\].* PASSED (?:\S*/)?(\w)\.ipynb::Cell \d", report, re.M)     # (worker, notebook)
    assert len(ran_on) == 9, report[-3000:]
    for name in ("a", "b", "c"):           # every cell of a notebook on the same worker
        assert len({worker for worker, nb in ran_on if nb == name}) == 1, report[-3000:]


def test_the_files_run_first_exist():
    from conftest import RUN_FIRST

    missing = [path for path in RUN_FIRST if not (ROOT / path).exists()]
    assert not missing, f"conftest.RUN_FIRST names files that are not there: {missing}"


# Rounding noise (a difference that is zero up to float64 or float32 rounding) is printed as a bound, never as its
# digits: those digits change with the CPU's kernels (AVX2, AVX-512, ARM) and would turn the stored outputs red
# elsewhere (minddim.plotting.below). A bare power of ten (`1e-12`, `< 1e-9`) is a bound and passes.
_NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?![\w.])")
_BARE_BOUND = re.compile(r"[-+]?1(?:\.0*)?[eE][-+]?\d+")


def printed_rounding_noise(text: str, below: float = 1e-10) -> list[str]:
    """The numbers in ``text`` that are nonzero, smaller than ``below`` in size and printed with digits."""
    return [m.group(0) for m in _NUMBER.finditer(text)
            if 0 < abs(float(m.group(0))) < below and not _BARE_BOUND.fullmatch(m.group(0))]


@pytest.mark.parametrize("text, found", [
    ("max |inline - md.q_step| = 2.6e-14", ["2.6e-14"]), ("agree: 8.9e-16 and 0.00000000000012", ["8.9e-16", "0.00000000000012"]),
    ("max |inline - md.q_step| = < 1e-12", []), ("tolerance 1e-12, 1.0e-15", []), ("alpha_bar_T = 4.04e-05", []),
    ("cell 3e-11 at 1.5e-10", ["3e-11"]), ("step 1000, 0.0 and 0.000", [])])
def test_the_rounding_noise_scan_finds_what_it_should(text, found):
    assert printed_rounding_noise(text) == found


@pytest.mark.parametrize("ipynb", sorted(p for d in ("notebooks", "solutions") for p in (ROOT / d).glob("*.ipynb")),
                         ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_no_stored_output_prints_rounding_noise(ipynb):
    nb = nbformat.read(ipynb, as_version=4)
    found = []
    for k, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            texts = [out.get("text", "")] + [v for key, v in (out.get("data") or {}).items() if key.startswith("text/")]
            for text in texts:
                text = "".join(text) if isinstance(text, list) else text
                found += [f"cell {k}: {n}" for n in printed_rounding_noise(text)]
    assert not found, (f"{ipynb.name} prints rounding noise as digits ({', '.join(found)}): print a bound instead, "
                       f"e.g. minddim.plotting.below(value, 1e-12) -> '< 1e-12'")
