# promptq: `make dev` runs the whole stack locally, `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: dev test lint fmt install migrate clean-data fuzz chaos bench bench-quick

# Reinstall only when the dependency list changes.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,embedded,bench]'
	touch $(STAMP)

install: $(STAMP)

dev: $(STAMP)
	$(BIN)/python -m devstack

# pytest's exit code 5 (nothing collected) is a failure here, never a silent pass.
test: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: no tests were collected" >&2; exit 1; fi; \
	exit $$rc

# Schemathesis on a real gunicorn at full size (tests/fuzz/test_openapi_fuzz.py: over 2,000
# requests); `make test` runs the same test small. FUZZ_SEED=<n> tries another seed.
fuzz: $(STAMP)
	FUZZ_MAX_EXAMPLES=$${FUZZ_MAX_EXAMPLES:-150} FUZZ_MIN_REQUESTS=$${FUZZ_MIN_REQUESTS:-2000} \
	$(BIN)/pytest tests/fuzz -rA --timeout 1800 $(PYTEST_ARGS)

# A bounded chaos run (3 minutes by default; CHAOS_SECONDS=<n>, CHAOS_SEED=<n>): random worker
# kills, Redis and PostgreSQL restarts and provider faults under load, then every invariant
# checked (tests/faults/chaos.py). Its own embedded Redis and PostgreSQL; not part of `make test`.
chaos: $(STAMP)
	$(BIN)/python -m tests.faults.chaos --seconds $${CHAOS_SECONDS:-180} \
		$${CHAOS_SEED:+--seed $$CHAOS_SEED}

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

migrate: $(STAMP)
	$(BIN)/alembic upgrade head

clean-data:
	rm -rf .data

# Throughput and cost against same-run bare baselines (bench/README.md): the standard set in at
# most 15 minutes, the quick one in at most 3. BENCH_ARGS passes options, e.g. --profile accept.
bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

bench-quick: $(STAMP)
	$(BIN)/python -m bench --quick $(BENCH_ARGS)
