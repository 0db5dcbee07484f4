# The commands the README promises. `make test` is what CI runs (.ci/run).
PYTHON ?= python3

.PHONY: install test test-fast lint

install:
	$(PYTHON) -m pip install -e '.[test,numba,train,dev]'

test: install
	$(PYTHON) -m pytest -q

test-fast: install
	$(PYTHON) -m pytest -q -m "not slow"

lint:
	ruff check minicnn tests examples benchmarks
