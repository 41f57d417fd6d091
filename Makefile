# Two commands do everything on a fresh machine (see README):
#   make run    install, then run the province on loopback: the HDIRS, SWODIN and NEODIN DIR nodes
#               and the DI Common Service, loaded with demo data (var/province/); Ctrl-C stops it
#   make test   install what is missing, then run the whole test suite
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python

.PHONY: run test install bench

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

run: install
	$(VENV)/bin/xca province

test: install
	bash tests/bootstrap.sh
	$(PY) -m pytest -q

bench: install
	$(PY) bench/run_all.py
