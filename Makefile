# The two commands of the README: `make up` (install, start RabbitMQ if needed,
# start every service) and `make test` (install, start RabbitMQ if needed, run
# every test tier). Each tier also has its own target.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
PYTEST := $(PY) -m pytest
.PHONY: install broker tools up down test test-unit test-service test-integration test-e2e test-browser test-deploy test-fault

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e ".[test]"
	touch $@

broker:
	bash deploy/ensure-rabbitmq.sh

# Debian packages the tests use, installed once: Chromium and its driver (browser
# tier; fonts-noto-cjk so that the Chinese pages' screenshots show Chinese), promtool
# (package prometheus), docker-compose and shellcheck (deploy checks).
tools:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null && \
	    command -v promtool >/dev/null && command -v docker-compose >/dev/null && \
	    command -v shellcheck >/dev/null && [ -d /usr/share/fonts/opentype/noto ] || \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	        --no-install-recommends chromium chromium-driver prometheus docker-compose \
	        shellcheck fonts-noto-cjk >/dev/null)

up: install broker
	$(VENV)/bin/pingxuan up

down: install
	$(VENV)/bin/pingxuan down

# Every tier: the browser tier in its own process (nameko's plugin monkey-patches
# eventlet, which a browser driver must not have), then the nameko tiers together,
# then the fault tests, which restart the shared RabbitMQ and so run after the rest.
test: install broker tools
	$(MAKE) --no-print-directory test-browser
	$(PYTEST) --ignore=tests/browser --ignore=tests/fault
	$(MAKE) --no-print-directory test-fault

test-unit: install
	$(PYTEST) tests/unit

test-service: install
	$(PYTEST) tests/service

test-integration: install broker
	$(PYTEST) tests/integration tests/providers

test-e2e: install broker
	$(PYTEST) tests/e2e

test-browser: install broker tools
	PINGXUAN_BROWSER_TESTS=1 $(PYTEST) -p no:pytest_nameko tests/browser

test-deploy: install tools
	bash deploy/check.sh

# Slow: kill services and restart RabbitMQ during a flood of votes.
test-fault: install broker
	$(PYTEST) -m fault tests/fault
