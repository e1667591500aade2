# Entry points. `make simulate` and `make test` work on a fresh machine with Python 3.11:
# the first call creates .venv and installs the pinned requirements.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CANDIDATE ?= solutions/a_mean_so_far
SOLUTION ?=
ARGS ?=
PYTEST_ARGS ?=

.PHONY: setup simulate profile test tox data bench train gate gate-all package clean

# `make gate` / `make package` act on one solution: say so before doing anything else.
ifneq ($(filter gate package,$(MAKECMDGOALS)),)
ifeq ($(SOLUTION),)
$(error SOLUTION is not set: make $(firstword $(filter gate package,$(MAKECMDGOALS))) SOLUTION=<name>, one of: $(notdir $(patsubst %/manifest.json,%,$(wildcard solutions/*/manifest.json))) (make gate-all gates every one))
endif
endif

$(STAMP): pyproject.toml requirements.lock
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "Python 3.11 is required; found " + sys.version.split()[0] + " at $(PYTHON). Set PYTHON=/path/to/python3.11")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -q -r requirements.lock
	$(BIN)/python -m pip install --disable-pip-version-check -q --no-deps -e .
	@touch $@

setup: $(STAMP)

## Grade the default candidate (or CANDIDATE=...) on the default generated data and print the report.
simulate: $(STAMP)
	$(BIN)/python -m harness simulate $(CANDIDATE) $(ARGS)

## Where the default candidate's (or CANDIDATE=...) time and memory go, by function and by line.
profile: $(STAMP)
	$(BIN)/python -m harness profile $(CANDIDATE) $(ARGS)

## The test suite (tiny generated sets; a few minutes at most).
test: $(STAMP)
	@$(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; exit 1; fi; exit $$rc

## tox: the tests and the gates, each in its own environment (ARGS="-e gate-<name>"; ARGS=l lists them all).
tox: $(STAMP)
	$(BIN)/python -m tox $(ARGS)

## Train one candidate (SOLUTION=<name>) or every trainable one, on the default generated data.
train: $(STAMP)
	$(BIN)/python -m models train $(if $(SOLUTION),solutions/$(SOLUTION),--all) $(ARGS)

## Gate one candidate (SOLUTION=<name>), every candidate, or build the upload zip.
gate: $(STAMP)
	$(BIN)/python -m harness gate solutions/$(SOLUTION) $(ARGS)

gate-all: $(STAMP)
	$(BIN)/python -m harness gate-all $(ARGS)

package: $(STAMP)
	$(BIN)/python -m harness package solutions/$(SOLUTION) $(ARGS)

## The default generated data sets (data/A, data/B).
data: $(STAMP)
	$(BIN)/python -m harness data

## Benchmarks: each prints a table of measured numbers beside their targets.
bench: $(STAMP)
	@for f in benchmarks/bench_*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .tox dist
