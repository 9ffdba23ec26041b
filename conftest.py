"""Repository-wide pytest configuration.

Notebooks run under nbval (see [tool.pytest.ini_options] in pyproject.toml). Their stderr stream holds
progress bars and warnings, which change from run to run and machine to machine: it is never compared.
Everything printed to stdout and every rich output is compared, after notebooks/sanitize.cfg has
replaced the genuinely volatile parts (wall-clock times).

Printed decimals are compared to within ``LAST_DIGIT_UNITS`` units of their last printed digit. The same
seeded float32 computation rounds differently on CPUs with different vector units (torch, MKL and oneDNN
pick AVX2, AVX-512 or AMX kernels, which sum in different orders), and a toy model trained for a few
thousand steps carries that difference into its results: measured on a 2-core AMD EPYC (AVX2) against the
outputs stored on an Intel CPU with AMX, 8 printed lines in 5 cells differed, every number by one unit in
its last digit (3.120 vs 3.121, 38.32 vs 38.31, 1.000 vs 0.999, 61.7 vs 61.8, 1.6e-16 vs 1.7e-16). Everything
else must match exactly: the words, the integers (counts, steps), the number of decimals printed, and any
number further off (``numbers_agree``, tested in tests/test_notebooks.py).

The suite runs under pytest-xdist (``-n auto --dist loadfile`` in pyproject.toml): each worker takes whole
files, so a notebook's cells run in order in one kernel. Each worker, and every kernel it starts, uses one
torch thread, and the stored outputs are made the same way (README, "Editing notebooks"). On a 2-core CPU two
files side by side finish sooner than one file at a time on two threads: measured 522 s against 696 s for the
whole suite, 1.33x (benchmarks/README.md, section 5: each file takes 1.1x-1.6x as long side by side as alone
on two threads, less than the 2x that two files at once make up for). The files that take longest (``RUN_FIRST``, measured with ``--durations``)
are handed out first, so that no worker is left with a long notebook while the other has nothing to do."""

import copy
import os
import re


LAST_DIGIT_UNITS = 2
# a decimal with digits after the point, optionally in scientific notation (integers are compared exactly)
_DECIMAL = re.compile(r"([-+]?\d+\.(\d+)(?:[eE]([-+]?\d+))?)")


def numbers_agree(reference: str, test: str, units: int = LAST_DIGIT_UNITS) -> bool:
    """Whether two printed texts say the same: the same words and integers, the same decimals up to ``units``
    units of the last digit printed (of the reference and of the test, whichever is larger), each printed to
    the same number of places. Runs of spaces are compared as one space, so a column whose number gains a
    digit (9.99 -> 10.00) still lines up."""
    ref, out = _DECIMAL.split(reference), _DECIMAL.split(test)
    if len(ref) != len(out):
        return False
    # re.split with 3 groups: text, (number, decimals, exponent), text, ...
    for k in range(0, len(ref), 4):
        if " ".join(ref[k].split()) != " ".join(out[k].split()):
            return False
    for k in range(1, len(ref), 4):
        (a, da, ea), (b, db, eb) = ref[k:k + 3], out[k:k + 3]
        if len(da) != len(db) or (ea is None) != (eb is None):
            return False
        unit = max(10.0 ** (int(e or 0) - len(da)) for e in (ea, eb))
        if abs(float(a) - float(b)) > units * unit * (1 + 1e-9):
            return False
    return True


def _texts(output):
    """The compared texts of one output: a stream's text, or a rich output's text/plain."""
    if output.get("output_type") == "stream":
        return output, "text"
    data = output.get("data") or {}
    return (data, "text/plain") if "text/plain" in data else (None, None)


def _tolerant(item, compare):
    """nbval's compare_outputs, retried once with every text output that ``numbers_agree`` with its reference
    replaced by the reference's text."""

    def compare_outputs(test, ref, skip_compare=None):
        if compare(test, ref, skip_compare):
            return True
        failed_as = item.comparison_traceback
        snapped = copy.deepcopy(test)
        for out, reference in zip(snapped, ref):
            (holder, key), (ref_holder, ref_key) = _texts(out), _texts(reference)
            if (holder is not None and key == ref_key and out.get("name") == reference.get("name")
                    and numbers_agree(item.sanitize(ref_holder[ref_key]), item.sanitize(holder[key]))):
                holder[key] = ref_holder[ref_key]
        if compare(snapped, ref, skip_compare):
            return True
        item.comparison_traceback = failed_as       # report the first, untouched difference
        return False

    return compare_outputs


# the longest files first (whole-notebook or whole-file times under --durations, one thread), then the rest
# in collection order; the many short unit-test files at the end fill the gaps between the workers
RUN_FIRST = ("notebooks/07_mnist.ipynb", "notebooks/05_fast_sampling.ipynb", "notebooks/03_epsilon_loss.ipynb",
             "notebooks/08_beyond_sampling.ipynb", "notebooks/06_scores_and_langevin.ipynb", "tests/test_shipped_unet.py",
             "notebooks/04_non_markovian_forward.ipynb", "tests/test_exercises_and_grader.py", "tests/test_nbgrader.py",
             "tests/test_lab_browser.py", "tests/test_site.py", "tests/test_hub.py", "tests/test_distributed.py",
             "tests/test_grading.py", "tests/test_score.py")


def pytest_configure(config):
    if os.environ.get("PYTEST_XDIST_WORKER"):
        # one thread per worker: this process's torch, and (inherited through the environment) its kernels'
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            os.environ[name] = "1"
        import torch

        torch.set_num_threads(1)


def _run_order(item):
    path = item.nodeid.split("::")[0]
    if path in RUN_FIRST:
        return RUN_FIRST.index(path)
    return len(RUN_FIRST) + (0 if path.startswith(("notebooks/", "solutions/")) else 1)


def pytest_collection_modifyitems(session, config, items):
    items.sort(key=_run_order)          # stable: a file's items keep their order
    for item in items:
        nb = getattr(item, "parent", None)
        skip = getattr(nb, "skip_compare", None)
        if skip is not None and "stderr" not in skip:
            nb.skip_compare = tuple(skip) + ("stderr",)
        if hasattr(item, "compare_outputs") and hasattr(item, "sanitize"):
            item.compare_outputs = _tolerant(item, item.compare_outputs)
