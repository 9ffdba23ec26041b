# Two commands on a fresh machine (see README.md):
#   make lab    set up .venv and open the course in JupyterLab
#   make test   set up .venv, build the website (make site) and run the whole test suite (unit tests + notebooks
#               under nbval + the website in a browser)
#   make site   set up .venv with the "site" extra and build the course as a static website into build/site
#               (stored outputs, executes nothing; view: python -m http.server -d build/site, or open its index.html)
#   make mnist  set up .venv and fetch MNIST (notebooks 07 and 08, train, evaluate need it)
#   make test-kernels  the notebooks and solutions under nbval twice more, torch/oneDNN/MKL capped at AVX2 and at
#               "default" (ATen's kernels without explicit vector code): another CPU's rounding against the stored outputs
#   make bench  (optional) the benchmarks in benchmarks/ (tens of minutes; see benchmarks/README.md)
# Versions come from constraints.txt: what CI tested is what you get.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.minddim-installed
# the course's JupyterLab settings (no "Jupyter news?" pop-up), installed where the lab reads its overrides
LAB_OVERRIDES := $(VENV)/share/jupyter/lab/settings/overrides.json
NBGRADER_SERVER := formgrader validate_assignment assignment_list course_list

.PHONY: lab test test-kernels bench setup mnist clean site

setup: $(STAMP) $(LAB_OVERRIDES)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	# torch first, pinned: a bare "torch" requirement could otherwise pull a different build
	$(PY) -m pip install -c constraints.txt torch
	$(PY) -m pip install -c constraints.txt -e ".[dev]"
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (minddim)"
	touch $(STAMP)

$(LAB_OVERRIDES): lab/overrides.json $(STAMP)
	mkdir -p $(dir $@)
	cp lab/overrides.json $@
	# nbgrader is the instructor's tool (tests/test_nbgrader.py, README "For instructors"): its menus and server
	# extensions stay out of the learner's lab (`jupyter labextension enable @jupyter/nbgrader` brings them back)
	$(VENV)/bin/jupyter labextension disable --level=sys_prefix @jupyter/nbgrader
	for e in $(NBGRADER_SERVER); do $(VENV)/bin/jupyter server extension disable --sys-prefix nbgrader.server_extensions.$$e; done

# the four MNIST files that notebooks 07 and 08, train and evaluate read, into $MINDDIM_DATA/mnist (default
# ~/.cache/minddim/mnist), checked against their published MD5 (README, "MNIST")
mnist: setup
	$(PY) -c "from minddim.data import data_root, load_mnist; load_mnist('train'); load_mnist('test'); print('MNIST is in', data_root() / 'mnist')"

# the file browser at the repository's root (notebooks/, exercises/), notebook 01 open
lab: setup
	$(VENV)/bin/jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root) --ServerApp.root_dir=. notebooks/01_forward_process.ipynb

# the site first: tests/test_site.py opens build/site in Chromium (and fails, saying so, where it is missing or stale)
test: setup site
	$(PY) -m pytest

# the course as a static website (README, "The course as a website"): Sphinx with MyST-NB renders the notebooks'
# stored outputs (nothing is executed), README's sections, benchmarks/README.md and the API from the docstrings.
# -E: a fresh build each time (autodoc does not see a changed docstring otherwise); -W: a warning (a README section
# renamed under an include, a docstring that is not valid reStructuredText) fails it.
SITE_STAMP := $(VENV)/.minddim-site-installed
$(SITE_STAMP): $(STAMP)
	$(PY) -m pip install -c constraints.txt -e ".[site]"
	touch $(SITE_STAMP)

site: setup $(SITE_STAMP)
	rm -rf build/site build/site-doctrees
	$(PY) -m sphinx -b html -E -W --keep-going -q -d build/site-doctrees site build/site
	@echo "The site is in build/site: python -m http.server -d build/site 8000, then http://127.0.0.1:8000/"

# the kernel capabilities torch can be told to use (torch.backends.cpu.get_cpu_capability() says which it took)
KERNELS ?= avx2 default
test-kernels: setup
	for k in $(KERNELS); do \
	  echo "== notebooks and solutions with ATEN_CPU_CAPABILITY=$$k ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2"; \
	  ATEN_CPU_CAPABILITY=$$k $(PY) -c "import torch; print('torch kernels:', torch.backends.cpu.get_cpu_capability())"; \
	  ATEN_CPU_CAPABILITY=$$k ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 $(PY) -m pytest notebooks solutions || exit 1; \
	done

bench: $(STAMP)
	# the reference implementation compared against (diffusers) lives only in the optional "bench" extra
	$(PY) -m pip install -c constraints.txt -e ".[dev,bench]"
	$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
