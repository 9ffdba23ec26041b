"""Sphinx configuration of the course's website (``make site``; README, "The course as a website").

The site is built from the repository as it is, executing nothing: Sphinx with MyST-NB renders the stored outputs
of ``notebooks/*.ipynb`` and ``exercises/*.ipynb`` (``site/notebooks`` and ``site/exercises`` are links to those
folders: no copies), MyST's ``include`` takes README's sections and ``benchmarks/README.md`` as they are, and
autodoc builds the API reference from the package's docstrings. ``solutions/`` is never read.

Everything a page needs is in the built folder: the theme's stylesheets, fonts and scripts come with its Python
package, and the maths renderer is MathJax 3.2.2 as the PyPI package ``django-static-mathjax`` ships it, copied into
``_static/mathjax``. Nothing is fetched from a CDN at build time or when a page is viewed (tests/test_site.py
checks every page and blocks any request that leaves the machine).
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))           # autodoc documents this checkout's minddim, whatever is installed

# The one place a public repository is named. With a URL (e.g. "https://github.com/OWNER/minddim"), every page gets
# the theme's repository and source buttons, and notebook pages launch buttons for Binder, Colab and a JupyterHub;
# with None (the default: this repository names no public home) there are no launch buttons and each page's
# "Source" line links to the copy of its source file inside the site.
REPOSITORY_URL: str | None = os.environ.get("MINDDIM_REPOSITORY_URL") or None
REPOSITORY_BRANCH = "main"

project = "minddim"
author = "the minddim authors"
copyright = "the minddim authors (MIT licence)"
release = version = "0.1.0"

extensions = ["myst_nb", "sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx.ext.mathjax"]

root_doc = "index"
exclude_patterns = ["_build", "**/.ipynb_checkpoints", "**/__pycache__", "**/sanitize.cfg"]
templates_path = []

# -- notebooks: stored outputs only ---------------------------------------------------------------------------------
nb_execution_mode = "off"
nb_merge_streams = True                  # a cell's many progress lines read as one block
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3
suppress_warnings = [
    "myst.header",                       # README's sections are included below a page title of their own
    "mystnb.unknown_mime_type",
]

# -- maths, offline: MathJax 3.2.2 from the PyPI package django-static-mathjax, copied into the site ----------------
# (the package is that MathJax release's files, packaged as a Django app; nothing of Django is needed or imported)
import mathjax as _mathjax_files  # noqa: E402  (django-static-mathjax: MathJax's es5/ folder, static files only)

MATHJAX_SOURCE = Path(_mathjax_files.__file__).parent / "static" / "mathjax" / "es5"
if not (MATHJAX_SOURCE / "tex-chtml.js").is_file():
    raise RuntimeError(f"no MathJax at {MATHJAX_SOURCE}: install the site extra "
                       f"(pip install -c constraints.txt -e '.[site]', which make site runs)")
# what the site carries: the TeX-to-HTML bundle, and what it loads on demand (TeX extensions, fonts, the menu and
# its accessibility tools); the other bundles (SVG, MathML input, server-side) are left out
MATHJAX_LEFT_OUT = ("*-full*.js", "*svg*", "mml-*.js", "tex-mml-*.js", "node-main.js", "latest.js")
mathjax_path = "mathjax/tex-chtml.js"

# -- API reference ----------------------------------------------------------------------------------------------------
autodoc_default_options = {"members": True, "undoc-members": False, "show-inheritance": True}
autodoc_member_order = "bysource"
autodoc_typehints = "signature"        # the docstrings describe the arguments in prose; the types stay in the signature
napoleon_google_docstring = True
napoleon_numpy_docstring = True

# -- HTML -------------------------------------------------------------------------------------------------------------
html_theme = "sphinx_book_theme"
html_title = "minddim: diffusion models, built step by step"
html_static_path = ["_static"]
html_favicon = "_static/favicon.svg"
html_context = {"default_mode": "light"}    # the theme's light/dark switch starts on light (no console error)
html_css_files = ["minddim.css"]
html_copy_source = True                  # each page's source file, as the learner would download it
html_show_sourcelink = True
html_last_updated_fmt = None
html_theme_options = {
    "use_download_button": True,         # the page's .ipynb / .md, from the copy inside the site
    "use_fullscreen_button": False,
    "show_toc_level": 2,
    "home_page_in_toc": True,
    "navigation_with_keys": False,
}
if REPOSITORY_URL:
    html_theme_options.update({
        "repository_url": REPOSITORY_URL,
        "repository_branch": REPOSITORY_BRANCH,
        "path_to_docs": "site",
        "use_repository_button": True,
        "use_source_button": True,
        "launch_buttons": {"binderhub_url": "https://mybinder.org", "colab_url": "https://colab.research.google.com",
                           "notebook_interface": "jupyterlab"},
    })


def source_path(docname: str) -> str | None:
    """The repository file a page comes from (``notebooks/03_epsilon_loss.ipynb``), or None for the site's own."""
    for folder in ("notebooks", "exercises"):
        if docname.startswith(folder + "/"):
            return docname + ".ipynb"
    return None


def _source_line(app, doctree, docname):
    """Under each notebook's and exercise's title: "Source: notebooks/NN_x.ipynb (with its jupytext pair .py)",
    linking to the repository when REPOSITORY_URL is set, else to the copy of the file inside the site."""
    from docutils import nodes

    path = source_path(docname)
    if path is None:
        return
    depth = docname.count("/")
    if REPOSITORY_URL:
        href = f"{REPOSITORY_URL.rstrip('/')}/blob/{REPOSITORY_BRANCH}/{path}"
    else:
        href = "../" * depth + "_sources/" + path
    para = nodes.paragraph(classes=["minddim-source"])
    para += nodes.Text("Source: ")
    para += nodes.reference("", "", nodes.literal(text=path), refuri=href)
    para += nodes.Text(f" (edit its jupytext pair, {path[:-len('.ipynb')]}.py)")
    section = next(iter(doctree.findall(nodes.section)), None)
    if section is None:
        doctree.insert(0, para)
    else:
        title = next((i for i, child in enumerate(section.children) if isinstance(child, nodes.title)), -1)
        section.insert(title + 1, para)


# a stylesheet a stored output asks a CDN for: matplotlib's animations (to_jshtml) link Font Awesome 4 for their
# buttons; the theme ships Font Awesome, which draws the same "fa fa-play" icons from the site's own copy
_REMOTE_STYLESHEET = re.compile(r"""<link\b[^>]*\bhref=["']https?://[^>]*>\s*""", re.I)


def _drop_remote_stylesheets(app, doctree, docname):
    """Remove ``<link href="https://...">`` from the stored HTML outputs: a page views offline."""
    from docutils import nodes

    for node in list(doctree.findall(nodes.raw)):
        if "html" in node.get("format", "") and _REMOTE_STYLESHEET.search(node.astext()):
            text = _REMOTE_STYLESHEET.sub("", node.astext())
            node.replace_self(nodes.raw(text, text, format=node["format"], classes=node.get("classes", [])))


def _copy_mathjax(app, exception):
    if exception is None and app.builder.format == "html":
        shutil.copytree(MATHJAX_SOURCE, Path(app.outdir) / "_static" / "mathjax", dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns(*MATHJAX_LEFT_OUT))


def _repository_paths(app, pagename, templatename, context, doctree):
    """With a REPOSITORY_URL: a notebook's or an exercise's launch and source buttons name its file where the
    repository has it (``notebooks/01_forward_process.ipynb``), not through site/'s link to the folder, which GitHub,
    Colab and Binder's URLs would not follow; the site's own pages are under ``site/``."""
    if not REPOSITORY_URL:
        return
    in_repository = source_path(pagename) is not None
    context["doc_path"] = "" if in_repository else "site"
    for options in (getattr(app.builder, "theme_options", None), app.config.html_theme_options):
        if options is not None:
            options["path_to_docs"] = "" if in_repository else "site"


def setup(app):
    app.connect("html-page-context", _repository_paths, priority=400)   # before the theme's buttons (500, 501)
    # MathJax on every page, not only those with formulas: the navigation's titles have maths on the search page too
    app.set_html_assets_policy("always")
    app.connect("doctree-resolved", _source_line)
    app.connect("doctree-resolved", _drop_remote_stylesheets)
    app.connect("build-finished", _copy_mathjax)
