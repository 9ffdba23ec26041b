"""Repository-wide pytest configuration.

Notebooks run under nbval (see [tool.pytest.ini_options] in pyproject.toml). Their stderr stream holds
progress bars and warnings, which change from run to run and machine to machine: it is never compared.
Everything printed to stdout and every rich output is compared, after notebooks/sanitize.cfg has
replaced the genuinely volatile parts (wall-clock times)."""


def pytest_collection_modifyitems(session, config, items):
    for item in items:
        nb = getattr(item, "parent", None)
        skip = getattr(nb, "skip_compare", None)
        if skip is not None and "stderr" not in skip:
            nb.skip_compare = tuple(skip) + ("stderr",)
