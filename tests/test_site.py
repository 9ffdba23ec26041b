"""The course as a website (``make site``, README "The course as a website"), read from ``build/site`` as built.

First what can be read from the files: the site is there and newer than everything it is made of; its sources in
``site/`` are pages and links, nothing pytest or nbval would collect; the navigation follows the course's order (the
notebooks, then every exercise in ``exercises/``, then setup, instructors, several GPUs, benchmarks, API); no line of
a solution region of ``solutions/*.py`` appears anywhere in it; no page, stylesheet or script asks another host for
anything (stylesheets, scripts, fonts, images: the maths renderer too is the site's own copy); no launch buttons
while no repository URL is configured; each notebook and exercise page links to its source file, inside the site.

Then a browser, as the JupyterLab test does (Debian's Chromium through Playwright, a fresh profile, the flags that
keep it off the network): the site served by a local HTTP server on a free port, every request for another host
aborted and recorded. The front page; every notebook page (every figure the stored notebook has is an image that
loaded; its maths is typeset by MathJax, with no raw ``$$`` or ``\\(`` left in the text outside code; nothing on the
console; nothing asked of another host); every exercise page (the same, and none of its solution's lines); the API
page of ``minddim.sample``; the search for "Tweedie" lists notebook pages. A copy of the site with one figure deleted
and a formula's delimiters left raw fails the same check, naming both (the check can fail). Screenshots go to
``test-artifacts/site/`` (ignored by git).

Where Chromium or Playwright is missing the browser tests are skipped, saying which; ``.ci/run`` installs Chromium.
"""

from __future__ import annotations

import functools
import html
import http.server
import json
import os
import re
import shutil
import sys
import threading
from importlib import metadata
from pathlib import Path
from urllib.parse import urlsplit

import nbformat
import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "build" / "site"
ARTIFACTS = ROOT / "test-artifacts" / "site"
CHROMIUM = os.environ.get("MINDDIM_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
# tests/test_lab_browser.py's flags: without them Chromium keeps trying to reach Google on a machine with no internet
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
EXERCISES = sorted((ROOT / "exercises").glob("[0-9][0-9]_*.ipynb"))
# the pages after the notebooks and exercises, in the course's order (site/index.md)
LATER_PAGES = ["setup.html", "instructors.html", "several_gpus.html", "benchmarks.html", "api/index.html"]
# what the site is made of: a change to any of these after the build makes build/site stale (files that running the
# notebooks may leave beside them, and caches, are not among them)
INPUTS = ("notebooks/[0-9][0-9]_*.ipynb", "exercises/[0-9][0-9]_*.ipynb", "site/*.*", "site/api/*", "site/_static/*",
          "minddim/**/*.py", "README.md", "benchmarks/README.md")


def _newest_input() -> tuple[float, Path]:
    return max((p.stat().st_mtime, p) for pattern in INPUTS for p in ROOT.glob(pattern) if p.is_file())


@pytest.fixture(scope="module")
def site() -> Path:
    index = SITE / "index.html"
    if not index.is_file():
        pytest.fail(f"no website at {SITE.relative_to(ROOT)}: build it with `make site` (`make test` does, first)")
    newest, path = _newest_input()
    if newest > index.stat().st_mtime:
        pytest.fail(f"{SITE.relative_to(ROOT)} is older than {path.relative_to(ROOT)}: rebuild it with `make site`")
    return SITE


def _norm(text: str) -> str:
    return " ".join(text.split())


def _page_text(path: Path) -> str:
    """A built file's text, as a reader or a search engine would get it: HTML's tags dropped, entities decoded."""
    text = path.read_text(errors="replace")
    if path.suffix == ".html":
        text = html.unescape(re.sub(r"<[^>]+>", "", text))
    return _norm(text)


def solution_lines() -> dict[str, list[str]]:
    """Per exercise, the lines between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` in ``solutions/NN_x.py``
    that say something (12 characters or more, not a comment) and that no published notebook or exercise also has
    (a notebook may derive the same line: that line is the notebook's, published with it)."""
    published = " ".join(_norm(p.read_text()) for folder in ("notebooks", "exercises")
                         for p in (ROOT / folder).glob("[0-9][0-9]_*.py"))
    secret = {}
    for path in sorted((ROOT / "solutions").glob("[0-9][0-9]_*.py")):
        inside, lines = False, []
        for line in path.read_text().splitlines():
            if "### BEGIN SOLUTION" in line:
                inside = True
            elif "### END SOLUTION" in line:
                inside = False
            elif inside and len(_norm(line)) >= 12 and not line.strip().startswith("#") \
                    and _norm(line) not in published:
                lines.append(_norm(line))
        secret[path.stem] = lines
    return secret


def find_solution_text(site_dir: Path) -> list[str]:
    """Every (file, solution line) where a line of a solution region shows in the built site's text: its pages,
    the copies of their sources, the search index."""
    secret = [(stem, line) for stem, lines in solution_lines().items() for line in lines]
    found = []
    for path in site_dir.rglob("*"):
        if path.is_file() and path.suffix in (".html", ".js", ".txt", ".ipynb", ".md", ".json") \
                and "mathjax" not in path.relative_to(site_dir).parts[:2]:
            text = _page_text(path)
            found += [f"{path.relative_to(site_dir)}: {line!r} (solutions/{stem}.py)" for stem, line in secret
                      if line in text]
    return found


def _stored_figures(notebook: Path) -> int:
    """Figures of a stored notebook: image outputs, and HTML outputs that show an <img> (an animation)."""
    nb = nbformat.read(notebook, as_version=4)
    return sum(1 for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
               if any(k.startswith("image/") for k in o.get("data", {}))
               or "<img" in o.get("data", {}).get("text/html", ""))


# -- the files -------------------------------------------------------------------------------------------------------
def test_the_site_extra_is_pinned_and_installed():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[name.strip().lower().replace("_", "-")] = version.strip()
    for req in project["optional-dependencies"]["site"]:
        name = re.split(r"[\s<>=!~;\[]", req, maxsplit=1)[0].lower().replace("_", "-")
        assert name in pins, f"constraints.txt does not pin {name}, which the site extra needs"
        assert metadata.version(name) == pins[name], \
            f"{name}: installed {metadata.version(name)}, constraints.txt pins {pins[name]} (make site installs it)"
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^test: .*\bsite\b", makefile, re.M), "make test must build the site first (the browser test)"
    assert '-c constraints.txt -e ".[site]"' in makefile


def test_site_sources_are_pages_and_two_links_nothing_pytest_collects():
    """site/ has the Sphinx configuration, pages, a stylesheet and an icon; notebooks/ and exercises/ in it are links
    to the repository's folders (no copies), and no solutions/ is linked."""
    src = ROOT / "site"
    for name, target in (("notebooks", "../notebooks"), ("exercises", "../exercises")):
        assert (src / name).is_symlink() and os.readlink(src / name) == target, f"site/{name} must link to {target}"
    files = [p.relative_to(src) for p in src.rglob("*") if p.is_file()
             and p.relative_to(src).parts[0] not in ("notebooks", "exercises") and "__pycache__" not in p.parts]
    assert {p.suffix for p in files} <= {".md", ".rst", ".css", ".svg", ".py"}, files
    assert [p for p in files if p.suffix == ".py"] == [Path("conf.py")]
    assert not any("solutions" in str(p) for p in src.rglob("*")), "site/ must never reach solutions/"


def test_every_public_module_has_an_api_page():
    init = (ROOT / "minddim" / "__init__.py").read_text()
    modules = re.findall(r'^    "(\w+)": \(', init, re.M)
    assert "sampling" in modules, modules
    missing = [m for m in modules if not (ROOT / "site" / "api" / f"{m}.rst").is_file()]
    assert not missing, f"no API page for minddim.{missing} (add site/api/NAME.rst and list it in site/api/index.md)"


def test_the_navigation_follows_the_course(site):
    index = (site / "index.html").read_text()
    nav = re.search(r'<div class="toctree-wrapper compound">(.*)</div>', index, re.S).group(1)
    links = re.findall(r'<a class="reference internal" href="([^"#]+)"', nav)
    expected = ([f"notebooks/{p.stem}.html" for p in NOTEBOOKS] + [f"exercises/{p.stem}.html" for p in EXERCISES]
                + LATER_PAGES)
    assert [h for h in links if h in expected] == expected, links
    assert len(NOTEBOOKS) == 10 and len(EXERCISES) >= 8
    for page in expected:
        assert (site / page).is_file(), page
    api = (site / "api" / "index.html").read_text()
    assert "sampling.html" in api
    # the answer key is not published (site/api/index.md says so): no page, link or documented entry for it
    assert not [h for h in re.findall(r'href="([^"]+)"', api) if "keys" in h or "answers" in h]
    assert 'id="minddim.grading.keys' not in (site / "api" / "grading.html").read_text()
    assert not list((site / "api").rglob("*keys*"))


def test_no_solution_text_anywhere_in_the_site(site):
    secret = solution_lines()
    assert sum(map(len, secret.values())) > 50, "too few solution lines read: is solutions/ there?"
    assert not find_solution_text(site)
    assert not [p for p in site.rglob("*") if "solutions" in p.name], "a file named after solutions/ is in the site"


def test_the_solution_scan_finds_a_leaked_line(site, tmp_path):
    """The scan above can fail: a copy of exercise 01's page with one solution line pasted in is reported."""
    copy = tmp_path / "leaky"
    (copy / "exercises").mkdir(parents=True)
    page = (site / "exercises" / "01_forward_process.html").read_text()
    line = solution_lines()["01_forward_process"][0]
    leaky = page.replace("</main>", f"<pre>{html.escape(line)}</pre></main>", 1)
    (copy / "exercises" / "01_forward_process.html").write_text(leaky)
    found = find_solution_text(copy)
    assert len(found) == 1 and "exercises/01_forward_process.html" in found[0] and line in found[0], found


_REMOTE = [re.compile(p, re.I) for p in (
    r"<(?:script|img|iframe|source|video|audio|embed)\b[^>]*\bsrc=[\"']?(?:https?:)?//",
    r"<link\b[^>]*\bhref=[\"']?(?:https?:)?//",
    r"url\(\s*[\"']?(?:https?:)?//",
    r"@import\s+[\"'](?:https?:)?//")]


def test_nothing_is_fetched_from_another_host(site):
    """No page, stylesheet or script of the site loads anything from another host (hyperlinks to papers are fine:
    a reader follows them, the page does not fetch them); MathJax is the site's own copy."""
    offenders = []
    for path in site.rglob("*"):
        if path.suffix in (".html", ".css"):
            text = path.read_text(errors="replace")
            offenders += [f"{path.relative_to(site)}: {m.group(0)[:120]}" for rx in _REMOTE for m in rx.finditer(text)]
    assert not offenders, offenders
    page = (site / "notebooks" / "02_variational_bound.html").read_text()
    assert re.search(r'<script[^>]*src="\.\./_static/mathjax/tex-chtml\.js', page), "MathJax is not the site's copy"
    assert (site / "_static" / "mathjax" / "tex-chtml.js").is_file()
    fonts = site / "_static" / "mathjax" / "output" / "chtml" / "fonts" / "woff-v2"
    assert (fonts / "MathJax_Main-Regular.woff").is_file(), "MathJax's fonts are not in the site"


def test_no_launch_buttons_without_a_repository_url(site):
    conf = (ROOT / "site" / "conf.py").read_text()
    assert re.search(r"^REPOSITORY_URL: str \| None = os\.environ\.get\(\"MINDDIM_REPOSITORY_URL\"\) or None$", conf,
                     re.M), "REPOSITORY_URL in site/conf.py is the one place a repository is named"
    if os.environ.get("MINDDIM_REPOSITORY_URL"):
        pytest.skip("MINDDIM_REPOSITORY_URL is set: this site was meant to have launch buttons")
    for page in ("index.html", "notebooks/01_forward_process.html"):
        text = (site / page).read_text()
        assert not re.search(r"binder|colab|launch-buttons|jupyterhub", text, re.I), f"{page} has launch buttons"


def test_each_notebook_and_exercise_page_links_to_its_source_file(site):
    for nb in NOTEBOOKS + EXERCISES:
        rel = f"{nb.parent.name}/{nb.stem}"
        page = (site / f"{rel}.html").read_text()
        m = re.search(r'<p class="minddim-source">Source: <a class="reference external" href="([^"]+)">', page)
        assert m, f"{rel}.html has no Source line"
        target = (site / rel).parent / m.group(1)
        assert target.resolve() == (site / "_sources" / f"{rel}.ipynb").resolve() and target.is_file(), m.group(1)
        assert json.loads(target.read_text())["cells"], target


def test_every_figure_of_a_stored_notebook_is_an_image_on_its_page(site):
    for nb in NOTEBOOKS:
        page = (site / "notebooks" / f"{nb.stem}.html").read_text()
        assert page.count("<img") == _stored_figures(nb), f"{nb.name}: {page.count('<img')} <img>, " \
                                                          f"{_stored_figures(nb)} figures stored"


# -- in a browser ----------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium, or set MINDDIM_CHROMIUM): the site is not "
                    f"tested in a browser")
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="playwright is not installed (pip install -e '.[dev]')")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as p:
        context = p.chromium.launch_persistent_context(tmp_path_factory.mktemp("chromium"), executable_path=CHROMIUM,
                                                       args=CHROMIUM_ARGS, viewport={"width": 1300, "height": 900})
        context.set_default_timeout(30_000)
        context.off_host = []                                   # every request for another host, aborted

        def route(r):
            url = urlsplit(r.request.url)
            if url.scheme in ("http", "https", "ws", "wss") and url.hostname not in ("127.0.0.1", "localhost"):
                context.off_host.append(r.request.url)
                r.abort()
            else:
                r.continue_()

        context.route("**/*", route)
        yield context
        context.close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def serve(folder: Path):
    """``python -m http.server`` on ``folder``, on a free port of 127.0.0.1, in a thread: (server, base URL)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


@pytest.fixture(scope="module")
def served(site):
    server, base = serve(site)
    yield base
    server.shutdown()
    server.server_close()


# the text a reader sees, less code, scripts and MathJax's own elements: where raw TeX would show if it were not typeset
_VISIBLE_PROSE_JS = """() => {
  const skip = 'pre, code, script, style, textarea, mjx-container, mjx-assistive-mml, .highlight';
  const walker = document.createTreeWalker(document.querySelector('main') || document.body, NodeFilter.SHOW_TEXT);
  const out = [];
  while (walker.nextNode()) {
    const n = walker.currentNode;
    if (!n.parentElement.closest(skip) && n.parentElement.offsetParent !== null) out.push(n.textContent);
  }
  return out.join(' ');
}"""
_RAW_TEX = re.compile(r"\$\$|\\\(|\\\)|\\\[|\\\]|\$[^\s$][^$]{0,200}?\$|\\(?:frac|mathbf|sqrt|alpha|beta|epsilon)\b")
# MathJax 3: startup.promise settles once the page's first typesetting is done
_MATHJAX_DONE_JS = """() => (window.MathJax && MathJax.startup && MathJax.startup.promise)
  ? MathJax.startup.promise.then(() => 'typeset', e => 'failed: ' + e) : 'no MathJax'"""
# Sphinx's formulas (span.math, div.math) that MathJax left without its rendering
_UNTYPESET_JS = """() => [...document.querySelectorAll('span.math, div.math')]
  .filter(e => !e.querySelector('mjx-container')).map(e => e.textContent.slice(0, 60))"""


def check_page(context, url: str, figures: int | None = None, maths: bool | None = None) -> tuple[object, list[str]]:
    """Open ``url`` in a new tab and list what is wrong with it: a response >= 400, a console error or uncaught
    exception, a request for another host, a figure that did not load (and, with ``figures``, a count of output
    images other than that), maths not typeset by MathJax or raw TeX left in the text. Returns (page, problems)."""
    page = context.new_page()
    problems = []
    page.on("console", lambda m: m.type == "error" and problems.append(f"console error: {m.text}"))
    page.on("pageerror", lambda e: problems.append(f"uncaught exception: {e}"))
    page.on("response", lambda r: r.status >= 400 and problems.append(f"HTTP {r.status}: {r.url}"))
    page.on("requestfailed", lambda r: (urlsplit(r.url).hostname in ("127.0.0.1", "localhost"))
            and problems.append(f"request failed: {r.url} ({r.failure})"))
    before = len(context.off_host)
    page.goto(url, wait_until="load")
    state = page.evaluate(_MATHJAX_DONE_JS)
    images = page.locator(".cell_output img")
    if figures is not None and images.count() != figures:
        problems.append(f"{images.count()} output images on the page, {figures} figures in the stored notebook")
    for k in range(images.count()):
        img = images.nth(k)
        img.scroll_into_view_if_needed()
        if not img.evaluate("e => e.complete && e.naturalWidth > 0 && e.naturalHeight > 0"):
            problems.append(f"image {k} did not load: {img.get_attribute('src')}")
    formulas = page.locator("span.math, div.math").count()         # Sphinx's maths: \\(...\\) and \\[...\\]
    if maths is None:
        maths = formulas > 0
    if maths and (state != "typeset" or formulas == 0 or page.locator("mjx-container").count() == 0):
        problems.append(f"maths not typeset: MathJax {state}, {formulas} formulas, "
                        f"{page.locator('mjx-container').count()} rendered")
    untypeset = page.evaluate(_UNTYPESET_JS) if state == "typeset" else []
    if untypeset:
        problems.append(f"{len(untypeset)} formulas not typeset: {untypeset[:3]}")
    if page.locator("mjx-merror").count() or "Math Processing Error" in page.inner_text("body"):
        problems.append(f"MathJax reports an error in a formula: {page.locator('mjx-merror').all_inner_texts()[:3]}")
    raw = sorted({m.group(0)[:40] for m in _RAW_TEX.finditer(page.evaluate(_VISIBLE_PROSE_JS))})
    if raw:
        problems.append(f"raw TeX in the text: {raw[:5]}")
    problems += [f"request for another host: {u}" for u in context.off_host[before:]]
    return page, problems


def _shot(page, name: str, selector: str | None = None):
    if selector:
        page.locator(selector).first.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / name))


def test_the_front_page(browser, served):
    page, problems = check_page(browser, served, maths=False)
    assert not problems, problems
    assert "diffusion models" in page.title().lower()
    nav = page.locator("nav.bd-links a").all_inner_texts()
    assert any(t.startswith("01") for t in nav) and "API reference" in nav, nav
    assert page.locator("form[action$='search.html'] input[name='q']").count(), "no search box"
    _shot(page, "00_front_page.png")
    page.close()


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_a_notebook_page_shows_its_figures_and_typeset_maths(browser, served, notebook):
    page, problems = check_page(browser, f"{served}notebooks/{notebook.stem}.html", figures=_stored_figures(notebook))
    assert not problems, f"{notebook.stem}.html: {problems}"
    if notebook.stem.startswith("06"):
        _shot(page, "06_notebook_tweedie.png", "h2:has-text('Tweedie'), h3:has-text('Tweedie')")
    if notebook.stem.startswith("01"):
        _shot(page, "01_notebook_animation.png", ".cell_output img >> nth=5")
    if notebook.stem.startswith("02"):
        _shot(page, "02_notebook_maths.png", "div.math >> nth=3")
    page.close()


@pytest.mark.parametrize("exercise", EXERCISES, ids=lambda p: p.stem)
def test_an_exercise_page_is_the_learners_without_the_answers(browser, served, exercise):
    page, problems = check_page(browser, f"{served}exercises/{exercise.stem}.html")
    assert not problems, f"{exercise.stem}.html: {problems}"
    text = _norm(page.inner_text("main"))
    assert "raise NotImplementedError" in text, "the exercise's stubs are not on its page"
    leaked = [line for line in solution_lines()[exercise.stem] if line in text]
    assert not leaked, f"solution text on {exercise.stem}.html: {leaked}"
    if exercise.stem.startswith("01"):
        _shot(page, "01_exercise.png", "pre:has-text('NotImplementedError')")
    page.close()


def test_the_api_page_of_minddim_sample(browser, served):
    page, problems = check_page(browser, f"{served}api/sampling.html#minddim.sampling.sample", maths=False)
    assert not problems, problems
    entry = page.locator("dt#minddim\\.sampling\\.sample")
    assert entry.count() == 1, "no entry for minddim.sampling.sample"
    signature = _norm(entry.inner_text())
    assert re.search(r"sample\(model, x_T(: \w+)?, schedule(: \w+)?, timesteps, eta=0\.0", signature), signature
    doc = _norm(page.locator("dl:has(> dt#minddim\\.sampling\\.sample) > dd").first.inner_text())
    assert "DDIM sec. 4.2, eq. 12" in doc and "DDPM ancestral sampling" in doc, doc[:300]
    _shot(page, "api_sampling_sample.png", "dt#minddim\\.sampling\\.sample")
    page.close()


def test_the_search_for_tweedie_finds_notebook_pages(browser, served):
    page, problems = check_page(browser, served, maths=False)
    box = page.locator("form[action$='search.html'] input[name='q']").first
    box.evaluate("(e, q) => { e.value = q; e.form.submit(); }", "Tweedie")     # the box, as Enter would send it
    page.wait_for_url(re.compile(r"search\.html\?q=Tweedie"))
    page.locator("#search-results .search-summary").wait_for()
    page.wait_for_function("() => !document.querySelector('#search-results .search-summary')"
                           ".textContent.includes('Searching')")
    hits = page.locator("#search-results ul.search li a").evaluate_all("as => as.map(a => a.getAttribute('href'))")
    assert any("notebooks/06_scores_and_langevin.html" in h for h in hits), hits
    assert not [h for h in hits if "solutions" in h], hits
    assert not problems and not browser.off_host, problems + browser.off_host
    _shot(page, "search_tweedie.png")
    page.close()


def test_a_broken_page_fails_the_check(browser, site, tmp_path):
    """The check can fail: in a copy of the site, notebook 01's first figure is deleted and one formula of notebook
    02 loses its Sphinx wrapper (its TeX left raw between $$); check_page reports the image that did not load, its
    404, and the raw TeX."""
    copy = tmp_path / "broken"
    shutil.copytree(site, copy, ignore=shutil.ignore_patterns("_sources"))
    page01 = (copy / "notebooks" / "01_forward_process.html").read_text()
    first = re.search(r'<div class="cell_output[^>]*>.*?<img[^>]*src="\.\./(_images/[^"]+)"', page01, re.S).group(1)
    (copy / first).unlink()
    page02 = copy / "notebooks" / "02_variational_bound.html"
    text = page02.read_text()
    article = text.index("<article")                    # a formula of the text (not of a hidden table of contents)
    m = re.compile(r'<span class="math notranslate nohighlight">\\\((.*?)\\\)</span>').search(text, article)
    page02.write_text(text[:m.start()] + f"<span>$${m.group(1)}$$</span>" + text[m.end():])
    server, base = serve(copy)
    try:
        page, problems = check_page(browser, f"{base}notebooks/01_forward_process.html",
                                    figures=_stored_figures(NOTEBOOKS[0]))
        _shot(page, "broken_01_missing_figure.png", ".cell_output img")
        page.close()
        assert any(p.startswith("image 0 did not load") and first in p for p in problems), problems
        assert any(p.startswith("HTTP 404") and first in p for p in problems), problems
        page, problems = check_page(browser, f"{base}notebooks/02_variational_bound.html")
        page.close()
        assert any(p.startswith("raw TeX in the text: ['$$") for p in problems), problems
    finally:
        server.shutdown()
        server.server_close()
