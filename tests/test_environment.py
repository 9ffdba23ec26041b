"""The environment files cannot drift: pyproject.toml, constraints.txt, environment.yml, README and CI agree."""

import re
import sys
from importlib import metadata
from pathlib import Path

import pytest
import yaml

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]


def _name(req: str) -> str:
    return re.split(r"[\s<>=!~;\[]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


@pytest.fixture(scope="module")
def project():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


@pytest.fixture(scope="module")
def constraints():
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"constraints.txt must pin exact versions: {line!r}"
            pins[_name(name)] = version
    return pins


def _deps(project):
    return [_name(r) for r in project["dependencies"]] + [_name(r) for r in project["optional-dependencies"]["dev"]]


def test_environment_yml_names_every_dependency_and_uses_the_constraints(project):
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert env["name"] == "minddim"
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    named = {_name(d.split("=")[0]) for d in conda} | {_name(p) for p in pip if not p.startswith("-")}
    named |= {"torch"} if "pytorch" in named else set()
    missing = [d for d in _deps(project) if d not in named]
    assert not missing, f"environment.yml does not name {missing}"
    assert "-c constraints.txt" in pip, "environment.yml must install with the tested constraints"
    assert "-e ." in pip, "environment.yml must install the package itself"
    assert any(d.startswith("python") for d in conda)


def test_constraints_pin_every_dependency_and_torch_2_13(project, constraints):
    missing = [d for d in _deps(project) if d not in constraints]
    assert not missing, f"constraints.txt does not pin {missing}"
    assert constraints["torch"] == "2.13.0"


def test_installed_versions_are_the_tested_ones(project, constraints):
    """What runs the tests is what constraints.txt pins (so a learner who follows README gets it too)."""
    for dep in _deps(project):
        installed = metadata.version(dep).split("+")[0]
        assert installed == constraints[dep], f"{dep}: installed {installed}, constraints.txt pins {constraints[dep]}"


def test_readme_gives_two_commands_and_ci_runs_the_test_one():
    readme = (ROOT / "README.md").read_text()
    makefile = (ROOT / "Makefile").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make lab" in readme and "make test" in readme
    assert re.search(r"^lab:", makefile, re.M) and re.search(r"^test:", makefile, re.M)
    assert re.search(r"^make test$", ci, re.M), ".ci/run must run README's test command"
    assert "torch" in makefile and "-c constraints.txt" in makefile


def test_ci_installs_chromium_and_playwright_for_the_browser_test(project):
    """tests/test_lab_browser.py skips without a browser: CI installs Debian's Chromium before `make test`, and
    Playwright comes with the dev extra (the system's Chromium is used; no `playwright install`)."""
    ci = (ROOT / ".ci" / "run").read_text()
    assert "apt-get install -y chromium" in ci and ci.index("apt-get install -y chromium") < ci.index("\nmake test")
    assert "playwright install" not in ci
    assert "playwright" in [_name(r) for r in project["optional-dependencies"]["dev"]]
