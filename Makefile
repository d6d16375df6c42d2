# The README's first two commands: `make run` and `make test`. Both work on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DEMO   := .demo

.PHONY: run test install install-test system-deps fuzz crash bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

## Debian packages: Chromium (prints summary.pdf; the page test), fonts, poppler-utils; WeasyPrint's libraries (benchmark peer).
system-deps:
	bash scripts/system-deps.sh

## Set up, regenerate the sample cohort into an ignored folder, run the nightly flow once on it.
run: install system-deps
	$(BIN)/stepwise demo --data-dir $(DEMO)

## Set up and run the whole test suite.
test: install-test system-deps
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) $(DEMO) .pytest_cache

## Long robustness campaigns (CI runs a short part of each in `make test`); both print their counts.
fuzz: install-test
	$(BIN)/python scripts/fuzz.py --examples 3000 --ingest 500

crash: install-test
	$(BIN)/python scripts/crash.py --random 30 --chains 8 --cli 2
