# The two commands of the README: `make up` (install, start RabbitMQ if needed,
# start every service) and `make test` (install, start RabbitMQ if needed, run
# every test tier). Each tier also has its own target.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
PYTEST := $(PY) -m pytest

.PHONY: install broker up down test test-unit test-service test-integration test-e2e

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e ".[test]"
	touch $@

broker:
	bash deploy/ensure-rabbitmq.sh

up: install broker
	$(VENV)/bin/pingxuan up

down: install
	$(VENV)/bin/pingxuan down

test: install broker
	$(PYTEST)

test-unit: install
	$(PYTEST) tests/unit

test-service: install
	$(PYTEST) tests/service

test-integration: install broker
	$(PYTEST) tests/integration tests/providers

test-e2e: install broker
	$(PYTEST) tests/e2e
