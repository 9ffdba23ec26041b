"""Each notebook is one sitting (issue 33, DESIGN.md's outline): it opens with what the learner will be able to
do, what it assumes and how long it takes; its main line is at most about 2,500 words of prose, with the rest in a
closing "Going further" section; it ends by saying what comes next and which exercise goes with it (a last cell
that starts "**Next:**" or "## What comes next", after "Going further" where there is one).

``python tests/test_course_structure.py`` prints each notebook's word counts (main line, "Going further")."""

import re
import sys
from pathlib import Path

import jupytext
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py"))
MAIN_LINE_WORDS = 2500
OPENING = ("**You will be able to:**", "**You need first:**", "**Time:**")
GOING_FURTHER = re.compile(r"^#{2,3} +Going further", re.M)
CLOSING = re.compile(r"\*\*Next:\*\*|#{2,3} +What comes next")     # the cell after "Going further" that closes


def words(markdown: str) -> int:
    """Prose words: display maths and HTML comments left out, an inline formula counted as one word, and only
    tokens with a letter or a digit (not table rules or bullets)."""
    text = re.sub(r"<!--.*?-->", " ", markdown, flags=re.S)
    text = re.sub(r"\$\$.*?\$\$", " ", text, flags=re.S)
    text = re.sub(r"\$[^$\n]+\$", " x ", text)
    return sum(1 for token in text.split() if re.search(r"[A-Za-z0-9]", token))


def markdown_cells(py: Path) -> list[str]:
    return [c.source for c in jupytext.read(py).cells if c.cell_type == "markdown"]


def prose(py: Path) -> tuple[int, int]:
    """(main-line words, "Going further" words) of a notebook's markdown cells."""
    main = further = 0
    inside = False
    for source in markdown_cells(py):
        parts = GOING_FURTHER.split(source)
        if len(parts) > 1:
            main += 0 if inside else words(parts[0])
            further += sum(words(p) for p in parts[1:])
            inside = True
        elif inside and not CLOSING.match(source.lstrip()):
            further += words(source)
        else:
            main += words(source)
    return main, further


def test_there_are_the_outlines_notebooks():
    numbers = [p.name[:2] for p in NOTEBOOKS]
    assert numbers == ["01", "02", "03", "04", "05", "06", "07", "08", "10"] or numbers[:8] == [
        "01", "02", "03", "04", "05", "06", "07", "08"], numbers


@pytest.mark.parametrize("py", NOTEBOOKS, ids=lambda p: p.stem)
def test_a_notebook_opens_with_what_it_teaches_needs_and_takes(py):
    first = markdown_cells(py)[0]
    assert first.startswith(f"# {py.name[:2]} · "), "the first cell is the title, '# NN · ...'"
    for line in OPENING:
        assert line in first, f"{py.name}: the opening cell needs a line starting {line}"
    time = first.split("**Time:**", 1)[1].splitlines()[0]
    assert re.search(r"\d+ min", time) and re.search(r"runs?", time), (
        f"{py.name}: the time line says how long to read (minutes) and how long it runs: {time!r}")


@pytest.mark.parametrize("py", NOTEBOOKS, ids=lambda p: p.stem)
def test_a_notebook_ends_with_what_comes_next_and_its_exercise(py):
    last = markdown_cells(py)[-1]
    assert "**Next:**" in last, f"{py.name}: the last cell says what comes next (**Next:** ...)"
    exercise = sorted((ROOT / "solutions").glob(py.name[:3] + "*.py"))
    if exercise:
        assert f"exercises/{exercise[0].stem}.ipynb" in last, (
            f"{py.name}: the last cell names its exercise, exercises/{exercise[0].stem}.ipynb")


@pytest.mark.parametrize("py", NOTEBOOKS, ids=lambda p: p.stem)
def test_a_notebook_is_one_sitting(py):
    main, further = prose(py)
    assert main <= MAIN_LINE_WORDS, (
        f"{py.name}: {main} words of prose on the main line (at most {MAIN_LINE_WORDS}); move detail into a "
        f"closing '## Going further' section")


def test_the_word_count_leaves_out_maths_and_counts_formulas_as_words():
    assert words("The score $\\nabla \\log q(x_t)$ is\n$$a = b + c$$\n| --- | --- |\n- one") == 5


if __name__ == "__main__":
    print(f"{'notebook':<28} {'main line':>9} {'going further':>13}")
    for py in NOTEBOOKS:
        main, further = prose(py)
        print(f"{py.stem:<28} {main:>9} {further:>13}")
    sys.exit(0)
