# alertmanager-gateway — every target creates the virtualenv it needs.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
CONFIG ?= config/gateway.yaml
STAMP  := $(VENV)/.installed

.PHONY: help venv run test test-fast lint typecheck format check-config clean loadtest bench profile

help:  ## list targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)  ## create .venv and install the gateway with its dev tools

run: $(STAMP)  ## serve with $(CONFIG) (default config/gateway.yaml, port 8080)
	$(BIN)/alertmanager-gateway run --config $(CONFIG)

test: $(STAMP)  ## the whole test suite (needs prometheus-alertmanager for the e2e test)
	$(BIN)/pytest -q

test-fast: $(STAMP)  ## tests that start no extra process
	$(BIN)/pytest -q -m 'not slow'

lint: $(STAMP)  ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)  ## mypy --strict on gateway/
	$(BIN)/mypy

format: $(STAMP)  ## apply ruff format and safe fixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

check-config: $(STAMP)  ## validate $(CONFIG) and every file in config/examples
	$(BIN)/alertmanager-gateway check-config --config $(CONFIG)
	for f in config/examples/*.yaml; do $(BIN)/alertmanager-gateway check-config --config $$f || exit 1; done

# make loadtest SCENARIO=single|group|storm|slow|faults DURATION=10 CONCURRENCY=32 RATE=0 WORKERS=1
SCENARIO    ?= single
DURATION    ?= 10
CONCURRENCY ?= 32
RATE        ?= 0
WORKERS     ?= 1
LOADTEST_ARGS ?=
loadtest: $(STAMP)  ## sink + floor + gateway on 127.0.0.1; report in loadtest/results/
	$(BIN)/python -m loadtest --scenario $(SCENARIO) --duration $(DURATION) \
		--concurrency $(CONCURRENCY) --rate $(RATE) --workers $(WORKERS) $(LOADTEST_ARGS)

profile: $(STAMP)  ## loadtest collecting a CPU profile, memory top, task tree and metrics
	$(BIN)/python -m loadtest --scenario $(SCENARIO) --duration $(DURATION) \
		--concurrency $(CONCURRENCY) --rate $(RATE) --workers $(WORKERS) --profile \
		--no-floor --no-calibrate $(LOADTEST_ARGS)

bench: $(STAMP)  ## pytest-benchmark micro-benchmarks of decode, render, encode, pipeline
	$(BIN)/pytest benchmarks -q -p no:randomly --benchmark-columns=min,median,mean,ops,rounds \
		--benchmark-sort=name

clean:  ## remove the virtualenv and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
