# Two entry points for a fresh machine: `make train` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH := torch==2.14.1 torchvision==0.29.1

.PHONY: setup train test test-all lint bench clean

$(BIN)/gan-bench: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e '.[test]'
	touch $@

setup: $(BIN)/gan-bench

train: setup
	$(BIN)/gan-bench train $(ARGS)

test: setup
	$(BIN)/ruff check .
	OMP_NUM_THREADS=2 $(BIN)/pytest -q

lint: setup
	$(BIN)/ruff check .

test-all: setup
	$(BIN)/pytest -q -m ''

bench: setup
	$(BIN)/gan-bench bench ring

clean:
	rm -rf $(VENV) outputs/*/ outputs/multirun
