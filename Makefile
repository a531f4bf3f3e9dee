# Two entry points: `make demo` (install + run the main job on sample data) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install demo test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

install: $(BIN)/python
	# CPU torch first, so the `torch` extra is already satisfied (a bare `torch` pulls a CUDA build).
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[all,dev]"

demo: install
	$(BIN)/python scripts/demo.py

test: install
	$(BIN)/ruff check pyhermes tests scripts migrations
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python scripts/bench.py

clean:
	rm -rf $(VENV) build dist *.egg-info demo-output
