# alertmanager-gateway — every target creates the virtualenv it needs.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
CONFIG ?= config/gateway.yaml
STAMP  := $(VENV)/.installed

.PHONY: help venv run test test-fast lint typecheck format check-config clean loadtest bench profile
.PHONY: install uninstall

# make install: where the service goes. DESTDIR stages the tree elsewhere (tests, packaging);
# the venv's scripts then point into DESTDIR, so a real install uses an empty DESTDIR.
DESTDIR    ?=
PREFIX     ?= /opt/alertmanager-gateway
SYSCONFDIR ?= /etc/alertmanager-gateway
UNITDIR    ?= /etc/systemd/system
UNIT       := alertmanager-gateway.service
SYSTEMCTL  ?= systemctl

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

install:  ## (root) venv in $(PREFIX), config in $(SYSCONFDIR), unit in $(UNITDIR); starts nothing
	$(PYTHON) -m venv $(DESTDIR)$(PREFIX)
	# setuptools reuses build/; a module deleted since the last build would be shipped.
	rm -rf build
	$(DESTDIR)$(PREFIX)/bin/pip install -q --disable-pip-version-check .
	rm -rf build
	install -d -m 0755 $(DESTDIR)$(SYSCONFDIR)
	install -d -m 0700 $(DESTDIR)$(SYSCONFDIR)/credentials
	# An existing config is never overwritten.
	test -e $(DESTDIR)$(SYSCONFDIR)/gateway.yaml || \
	  install -m 0644 config/gateway.yaml $(DESTDIR)$(SYSCONFDIR)/gateway.yaml
	install -d -m 0755 $(DESTDIR)$(UNITDIR)
	sed -e 's|/opt/alertmanager-gateway|$(PREFIX)|g' \
	    -e 's|/etc/alertmanager-gateway/|$(SYSCONFDIR)/|g' \
	    systemd/$(UNIT) > $(DESTDIR)$(UNITDIR)/$(UNIT)
	chmod 0644 $(DESTDIR)$(UNITDIR)/$(UNIT)
	if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then $(SYSTEMCTL) daemon-reload; fi
	@echo "installed. Next: edit $(SYSCONFDIR)/gateway.yaml, then"
	@echo "  systemctl enable --now alertmanager-gateway   (see systemd/README.md)"

uninstall:  ## (root) stop and remove the service, its venv, and the config if unchanged
	if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then \
	  $(SYSTEMCTL) disable --now $(UNIT) || true; fi
	rm -f $(DESTDIR)$(UNITDIR)/$(UNIT)
	if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then $(SYSTEMCTL) daemon-reload; fi
	rm -rf $(DESTDIR)$(PREFIX)
	# Your edited config and your credentials are kept (and said so); shipped ones go.
	if cmp -s config/gateway.yaml $(DESTDIR)$(SYSCONFDIR)/gateway.yaml; then \
	  rm -f $(DESTDIR)$(SYSCONFDIR)/gateway.yaml; fi
	rmdir $(DESTDIR)$(SYSCONFDIR)/credentials 2>/dev/null || true
	rmdir $(DESTDIR)$(SYSCONFDIR) 2>/dev/null || \
	  echo "kept $(SYSCONFDIR) (your config or credentials are in it)"
