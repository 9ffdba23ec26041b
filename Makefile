# Two commands on a fresh machine (see README.md):
#   make lab    set up .venv and open the course in JupyterLab
#   make test   set up .venv and run the whole test suite (unit tests + notebooks under nbval)
#   make bench  (optional) the benchmarks in benchmarks/ (tens of minutes; see benchmarks/README.md)
# Versions come from constraints.txt: what CI tested is what you get.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.minddim-installed

.PHONY: lab test bench setup clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	# torch first, pinned: a bare "torch" requirement could otherwise pull a different build
	$(PY) -m pip install -c constraints.txt torch
	$(PY) -m pip install -c constraints.txt -e ".[dev]"
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (minddim)"
	touch $(STAMP)

lab: $(STAMP)
	$(VENV)/bin/jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root) notebooks/

test: $(STAMP)
	$(PY) -m pytest

bench: $(STAMP)
	# the reference implementation compared against (diffusers) lives only in the optional "bench" extra
	$(PY) -m pip install -c constraints.txt -e ".[dev,bench]"
	$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
