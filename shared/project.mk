# Targets every project Makefile includes (`PROJECT := name` then `include ../shared/project.mk`).
# Run from the root they use the root .venv (VENV is exported); run from the folder they use the
# project's own .venv, built from its requirements.txt alone.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3.11
VENV ?= $(CURDIR)/.venv
PY := $(VENV)/bin/python
SCALE ?= mini
LAUNCHER ?=
export OMP_NUM_THREADS ?= 1
export MKL_NUM_THREADS ?= $(OMP_NUM_THREADS)
export OPENBLAS_NUM_THREADS ?= $(OMP_NUM_THREADS)
export HF_HUB_OFFLINE ?= 1
export WANDB_MODE ?= disabled
export PYTHON

.PHONY: help env test test-slow test-gpu mini repro check clean
help: ## list this project's targets
	@grep -hE '^[a-zA-Z0-9%_-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | awk -F'\t' '{printf "  make %-12s %s\n", $$1, $$2}'

env: ## build/refresh $(VENV) from requirements.txt (no-op when unchanged; from the root, the root's env)
	@if [ -z "$(REPRO_ROOT_ENV)" ]; then bash ../scripts/env.sh "$(VENV)" $(PROJECT); fi

test: env ## fast tests (< 60 s)
	@$(PY) -m pytest -q; rc=$$?; [ $$rc -eq 5 ] && rc=0; exit $$rc

test-slow: env ## slow tier: mini reproduction end to end, submitit_local, resume
	@$(PY) -m pytest -q -m slow; rc=$$?; [ $$rc -eq 5 ] && rc=0; exit $$rc

test-gpu: env ## GPU smoke tests (skipped without CUDA)
	@$(PY) -m pytest -q -m gpu; rc=$$?; [ $$rc -eq 5 ] && rc=0; exit $$rc

check: env ## render results/$(SCALE).md (+ the README's table at mini scale) from outputs/$(SCALE); check the claims
	$(PY) -m shared.results . --scale $(SCALE) --check --command "make repro-$(PROJECT)$(if $(filter paper,$(SCALE)), SCALE=paper,)" \
	  $(if $(filter mini,$(SCALE)),--readme README.md,)

clean: ## remove outputs, multirun dirs and caches
	rm -rf outputs multirun .pytest_cache
