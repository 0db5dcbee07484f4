# The commands the README promises. `make test` is what CI runs (.ci/run).
PYTHON ?= python3
DATA_DIR := /usr/share/datasets/fashion-mnist

.PHONY: install data train notebooks test test-fast lint

install:
	$(PYTHON) -m pip install -e '.[test,numba,train,dev,notebooks,cuda-compile]'

# Debian's dataset-fashion-mnist package installs the four IDX files under $(DATA_DIR).
# Without apt (or root), minicnn downloads them itself: `minicnn train lenet --download`.
data:
	@if [ ! -d $(DATA_DIR) ] && command -v apt-get >/dev/null 2>&1; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist; \
	fi

# The main job: LeNet on the real Fashion-MNIST with the book's recipe.
train: data
	$(PYTHON) -m pip install -q -e '.[numba,train]'
	$(PYTHON) -m minicnn train lenet

# The chapter as notebooks: build notebooks/*.ipynb from examples/*.py and run each on a
# Jupyter kernel, writing it back with its outputs and pictures (a few minutes on 2 cores).
notebooks: data
	$(PYTHON) -m pip install -q -e '.[numba,notebooks]'
	$(PYTHON) notebooks/build.py

test: install
	$(PYTHON) -m pytest -q

test-fast: install
	$(PYTHON) -m pytest -q -m "not slow"

lint:
	ruff check minicnn tests examples benchmarks notebooks
