# Two commands for a fresh machine with only python3:
#   make demo   trains the sparse autoencoder on the embedded natural images (or: make gradcheck)
#   make test   lint + the whole test suite (what CI runs)
#   make check  lint + the fast tier of the tests, for the edit-and-test loop
# Each creates .venv (and installs saejax into it) when it is missing or pyproject.toml changed.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo gradcheck test check lint docs clean

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,docs]'
	touch $@

demo: $(BIN)/.installed
	$(BIN)/saejax train

gradcheck: $(BIN)/.installed
	$(BIN)/saejax gradcheck

lint: $(BIN)/.installed
	$(BIN)/ruff check .

test: lint
	$(BIN)/pytest -q

check: lint
	$(BIN)/pytest -q -m "not slow"

docs: $(BIN)/.installed
	$(BIN)/mkdocs build --strict

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
