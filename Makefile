# renkou — the two commands a newcomer needs are `make run` and `make test`; see README.md.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV   := .venv
BIN    := $(VENV)/bin
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && { echo $$p; break; }; done)
STAMP  := $(VENV)/.installed
KAFKA_JARS := infra/kafka/target/lib/.resolved
PYTEST_ARGS ?=

.PHONY: help setup run test up down bench lint format clean

help:
	@echo "make run    start the whole backbone locally and feed it a simulated city (Ctrl-C stops it; RESIDENTS=N)"
	@echo "make test   the test suite against a real Kafka broker and a real PostgreSQL"
	@echo "make setup  create .venv and install everything (the others call it)"
	@echo "make up / make down   start / stop the stack in the background"
	@echo "make bench  the benchmarks (QUICK=1 short; GROWTH=1 cost with 1M/10M archived; CLUSTER=1 three brokers; STANDBY=1 reads from a standby)"
	@echo "make lint   ruff and mypy --strict"

setup: $(STAMP) $(KAFKA_JARS)

$(STAMP): pyproject.toml infra/bootstrap.sh
	@bash infra/bootstrap.sh
	@test -n "$(PYTHON)" || { echo "no Python 3.11+ found" >&2; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --upgrade pip
	@$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $@

$(KAFKA_JARS): infra/kafka/pom.xml | $(STAMP)
	@echo "resolving Apache Kafka's jars from Maven Central (once)..."
	@rm -rf infra/kafka/target/lib
	@mvn -q -B -f infra/kafka/pom.xml dependency:copy-dependencies
	@touch $@

# RESIDENTS=, YEARS=, SEED= change the simulated city (default: 10,000 residents over 20 years, seed 0).
run: setup
	@$(BIN)/renkou run $(if $(RESIDENTS),--residents $(RESIDENTS),) $(if $(YEARS),--years $(YEARS),) \
		$(if $(SEED),--seed $(SEED),)

up: setup
	@$(BIN)/renkou up

down:
	@if [ -x $(BIN)/renkou ]; then $(BIN)/renkou down; else echo "nothing to stop (no .venv yet)"; fi

# pytest exits 5 when it collects no test: that is not a failure of the code, every other non-zero exit is.
test: setup
	@set +e; $(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no test"; exit 0; fi; exit $$rc

# GROWTH=1: only the growth benchmark (cost per event with 1M and 10M events archived; long); CLUSTER=1: only the
# projector on three brokers beside one; STANDBY=1: only the query API reading from a PostgreSQL standby. Each
# replaces its own section of RESULTS.md.
bench: setup
	@$(BIN)/python -m benchmarks $(if $(QUICK),--quick,) $(if $(GROWTH),--only growth,) $(if $(CLUSTER),--only cluster,) $(if $(STANDBY),--only standby,)

lint: setup
	@$(BIN)/ruff check --no-cache .
	@$(BIN)/ruff format --no-cache --check .
	@$(BIN)/mypy --strict events projections services benchmarks tests

format: setup
	@$(BIN)/ruff format .
	@$(BIN)/ruff check --fix .

clean: down
	rm -rf .local infra/kafka/target
