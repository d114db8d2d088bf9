# The two commands a user needs:  make run  (the whole system, locally)  and  make test.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: help venv test unit lint run demo benchmark deploy teardown localcloud-start localcloud-stop clean

help:
	@echo "make run        start the local cloud, deploy both paths, serve the orders API (chalice local)"
	@echo "make test       lint, type-check and run every test (unit, local cloud, end to end)"
	@echo "make unit       only the unit tests (no cloud needed)"
	@echo "make demo       like run, and first place one order through each flow and print both timelines"
	@echo "make benchmark  time both flows on the local cloud (and the local cloud itself); prints figures"
	@echo "make deploy STAGE=dev / make teardown STAGE=dev   (an AWS account: no AWS_ENDPOINT_URL set)"
	@echo "make localcloud-start / localcloud-stop"

$(STAMP): requirements.txt requirements-dev.txt scripts/find-python
	@test -x $(PY) || "$$(scripts/find-python)" -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@touch $@

venv: $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

unit: $(STAMP)
	$(PY) -m pytest tests/unit

test: $(STAMP) lint
	bash localcloud/run install
	$(PY) -m pytest

run: $(STAMP)
	$(PY) -m tools.run_local

demo: $(STAMP)
	$(PY) -m tools.run_local --demo

benchmark: $(STAMP)
	AWS_ENDPOINT_URL=$$(bash localcloud/run start | tail -n 1) $(PY) -m deploy up --stage local
	$(PY) -m tools.benchmark_flows
	$(PY) -m localcloud.benchmark

deploy: $(STAMP)
	$(PY) -m deploy up --stage $(or $(STAGE),dev)

teardown: $(STAMP)
	$(PY) -m deploy down --stage $(or $(STAGE),dev)

localcloud-start: $(STAMP)
	bash localcloud/run start

localcloud-stop:
	bash localcloud/run stop

clean: localcloud-stop
	rm -rf $(VENV) .localcloud .chalice/deployments .chalice/deployed
