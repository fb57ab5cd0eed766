# papers-repro: `make help` lists the targets. Root targets share one environment (.venv, or VENV=...).
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3.11
VENV ?= $(CURDIR)/.venv
PY := $(VENV)/bin/python
# Every folder with a requirements.txt except shared/ is a project.
PROJECTS := $(filter-out shared,$(patsubst %/,%,$(dir $(wildcard */requirements.txt))))
SCALE ?= mini
LAUNCHER ?=
# One BLAS/OpenMP thread unless the caller says otherwise: up to 100x faster on 2 shared cores.
export OMP_NUM_THREADS ?= 1
export MKL_NUM_THREADS ?= $(OMP_NUM_THREADS)
export OPENBLAS_NUM_THREADS ?= $(OMP_NUM_THREADS)
export VENV PYTHON
# Project Makefiles called from here use the root venv that `env` below already made: they must not
# re-stamp it with their own requirements alone (that would reinstall back and forth).
export REPRO_ROOT_ENV := 1

.PHONY: help env test test-slow test-gpu mini check lint readme clean
help: ## list the targets
	@echo "papers-repro. Projects here: $(PROJECTS)"
	@grep -hE '^[a-zA-Z%_-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | awk -F'\t' '{printf "  make %-22s %s\n", $$1, $$2}'

env: ## create/refresh the shared .venv (Python 3.11) from every requirements file; no-op when unchanged
	@bash scripts/env.sh "$(VENV)" $(PROJECTS)

test: env ## fast tests of shared/ and every project (keeps going, prints a summary, fails if any failed)
	@bash scripts/run_tests.sh fast shared $(PROJECTS)

test-slow: env ## slow tier (mini reproductions end to end, submitit_local, resume) of every project
	@bash scripts/run_tests.sh slow shared $(PROJECTS)

test-gpu: env ## GPU smoke tests (pytest -m gpu) of every project; skipped without CUDA
	@bash scripts/run_tests.sh gpu shared $(PROJECTS)

mini: env ## every project's CPU mini reproduction, with its results table
	@fail=0; for p in $(PROJECTS); do $(MAKE) --no-print-directory -C $$p mini || fail=1; done; exit $$fail

check: env ## render every project's results tables and check the paper's claims
	@fail=0; for p in $(PROJECTS); do $(MAKE) --no-print-directory -C $$p check || fail=1; done; exit $$fail

lint: env ## ruff over the whole repo
	$(PY) -m ruff check .

readme: env ## regenerate the README's project table from each project's results/
	$(PY) scripts/readme_table.py

clean: ## remove the root .venv and every project's outputs
	rm -rf .venv
	@for p in $(PROJECTS); do $(MAKE) --no-print-directory -C $$p clean; done

# Per-project targets: make repro-wanda, make test-wanda, make env-wanda (its own venv), ...
repro-%: env ## run a project's mini reproduction and print its table (SCALE=paper [LAUNCHER=slurm] for the paper's)
	@$(MAKE) --no-print-directory -C $* repro SCALE=$(SCALE) LAUNCHER=$(LAUNCHER)
test-%: env ## fast tests of one project (or shared)
	@bash scripts/run_tests.sh fast $*
mini-%: env ## one project's CPU mini reproduction
	@$(MAKE) --no-print-directory -C $* mini
check-%: env ## one project's results tables and claims check
	@$(MAKE) --no-print-directory -C $* check
env-%: ## a project-local venv (<project>/.venv) built from that project's requirements alone
	@$(MAKE) --no-print-directory -C $* env VENV=$(CURDIR)/$*/.venv REPRO_ROOT_ENV=
clean-%: ## remove one project's outputs
	@$(MAKE) --no-print-directory -C $* clean
