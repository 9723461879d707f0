# The two commands a user needs: `make demo` and `make test`.
# Both create a project-local .venv when missing. TORCH_SPEC overrides the torch
# requirement (default: the CPU wheel torch==2.13.0), e.g. TORCH_SPEC="torch==2.5.1".
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint docs bench bench-scale bench-transfer clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade "pip>=23" "setuptools<80.9" wheel
	$(BIN)/python -m pip install "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/scdeepclust demo --out demo_output

test: $(STAMP)
	$(BIN)/ruff check scdeepclust tests benchmarks
	$(BIN)/ruff format --check scdeepclust tests benchmarks
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check --fix scdeepclust tests benchmarks
	$(BIN)/ruff format scdeepclust tests benchmarks

docs: $(STAMP)
	$(BIN)/python -m sphinx -W --keep-going -b html docs docs/_build/html

bench: $(STAMP)
	$(BIN)/python benchmarks/domains.py

bench-transfer: $(STAMP)
	$(BIN)/python benchmarks/transfer.py

bench-scale: $(STAMP)
	$(BIN)/python benchmarks/scale.py
	$(BIN)/python benchmarks/joint.py

clean:
	rm -rf $(VENV) demo_output .pytest_cache docs/_build
