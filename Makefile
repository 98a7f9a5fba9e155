# Two entry points (README): `make run` and `make test`. Both create the virtual environment
# they need on first use; nothing has to be installed beforehand except Python 3.11.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.spykehw-installed

.PHONY: run test test-long mutation env clean clean-cache

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found (spykehw needs Python 3.11; set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip==25.3" "setuptools==80.9.0"
	$(BIN)/python -m pip install --quiet -e ".[hw,fpga,test]"
	@touch $@

env: $(STAMP)

## The main job on the embedded MNIST sample; results go to runs/<timestamp>/.
run: $(STAMP)
	$(BIN)/spykehw run

## The test suite CI runs (long runs are behind `-m long`). Installs Icarus if it can.
test: $(STAMP)
	@command -v iverilog >/dev/null 2>&1 || ./.ci/install-iverilog || echo "note: iverilog not installed; Icarus tests will be skipped"
	$(BIN)/python -m pytest -n 2 -q

test-long: $(STAMP)
	$(BIN)/python -m pytest -m long -q

## Mutation testing of the integer golden model's arithmetic (README "Test strength"; not in CI).
## A seeded random sample of mutants, one test run each: about 25 s per mutant on a loaded machine.
MUTANTS ?= 150
MUTATION_MINUTES ?= 0
mutation: $(STAMP)
	$(BIN)/python tools/mutate.py --sample $(MUTANTS) --seed 1 --minutes $(MUTATION_MINUTES) --out mutation-report.json

## numba's on-disk cache does not notice edits in a called module: clear it after editing golden/
clean-cache:
	find golden spykehw -name '*.nbi' -o -name '*.nbc' | xargs rm -f

clean: clean-cache
	rm -rf $(VENV) build *.egg-info .pytest_cache
