"""Repository-wide pytest configuration.

Notebooks run under nbval (see [tool.pytest.ini_options] in pyproject.toml). Their stderr stream holds
progress bars and warnings, which change from run to run and machine to machine: it is never compared.
Everything printed to stdout and every rich output is compared, after notebooks/sanitize.cfg has
replaced the genuinely volatile parts (wall-clock times).

A notebook whose metadata names ``minddim: {requires_data: NAME}`` (07_cifar10) runs its first code cell,
which says whether the data set is present; when it is not, its other cells are reported as skipped with
that reason. Where the data is present the whole notebook runs."""

import pytest


def pytest_collection_modifyitems(session, config, items):
    for item in items:
        nb = getattr(item, "parent", None)
        skip = getattr(nb, "skip_compare", None)
        if skip is not None and "stderr" not in skip:
            nb.skip_compare = tuple(skip) + ("stderr",)
        needs = getattr(nb, "nb", {}).get("metadata", {}).get("minddim", {}).get("requires_data")
        if needs and getattr(item, "cell_num", 0) > 0:
            from minddim.data import available, data_root

            if not available(needs):
                item.add_marker(pytest.mark.skip(reason=f"{needs} is not present under {data_root() / needs} "
                                                        f"(the notebook's first cell says so)"))
