# The two commands a user needs:  make run  (the whole system, locally)  and  make test.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
# One venv: make run installs what running needs (RUN_STAMP), make test adds the test tools (STAMP).
STAMP := $(VENV)/.installed
RUN_STAMP := $(VENV)/.installed-run
# The venv itself, made by whichever of the two installs comes first.
NEW_VENV = @test -x $(PY) || bash scripts/uv venv --quiet --python "$$(bash scripts/find-python)" $(VENV)
STAGE ?= dev
# make run's progress lines count from here, installs included.
export ORDERS_RUN_STARTED := $(shell date +%s.%N)
# Local stages go to the local cloud (started if needed); others to your AWS account.
ifneq ($(filter local%,$(STAGE)),)
TARGET := AWS_ENDPOINT_URL=$$(bash localcloud/run start | tail -n 1)
endif

.PHONY: help venv lock test chromium-early unit lint run demo benchmark fault-run fuzz diagrams openapi deploy teardown localcloud-start localcloud-stop clean

help:
	@echo "make run        start the local cloud, deploy both paths, serve the orders API (chalice local)"
	@echo "make test       lint, type-check and run every test (unit, local cloud, end to end)"
	@echo "make unit       only the unit tests (no cloud needed)"
	@echo "make demo       like run, and first place one order through each flow and print both timelines"
	@echo "make benchmark  time the three styles on the local cloud (and the local cloud itself); prints figures"
	@echo "make fault-run  both flows under injected faults, 200 orders each; counts lost, doubled, stuck"
	@echo "make fuzz       over 1,000 generated API requests checked against the OpenAPI description;"
	@echo "                the token and request parsers' properties with 2,000 examples each"
	@echo "make deploy STAGE=dev / make teardown STAGE=dev   (an AWS account: no AWS_ENDPOINT_URL set)"
	@echo "make teardown STAGE=local   remove both local deployments from the local cloud"
	@echo "make diagrams   regenerate the Mermaid diagrams embedded in README.md and docs/ from the sources"
	@echo "make openapi    rewrite docs/openapi.json (the API's description) from the routes and schemas"
	@echo "make localcloud-start / localcloud-stop"

# Everything, test tools included: exactly the versions in requirements-dev.lock (made by
# `make lock`), installed with uv.
$(STAMP): requirements-dev.lock requirements-durable.lock scripts/find-python scripts/uv
	$(NEW_VENV)
	bash scripts/uv pip sync --quiet --python $(PY) requirements-dev.lock
	bash scripts/uv pip install --quiet --no-deps --python $(PY) -r requirements-durable.lock
	@touch $@

# What running needs: the versions in requirements-run.lock, a subset of requirements-dev.lock
# with the same versions. Installed, not synced, so make run after make test keeps the test tools.
# The durable lock too: the local SAM stage's durable function runs under AWS's local runner.
$(RUN_STAMP): requirements-run.lock requirements-durable.lock scripts/find-python scripts/uv
	$(NEW_VENV)
	bash scripts/uv pip install --quiet --python $(PY) -r requirements-run.lock
	bash scripts/uv pip install --quiet --no-deps --python $(PY) -r requirements-durable.lock
	@touch $@

venv: $(STAMP)

# The run lock takes each version from the dev lock: switching between them changes no version.
lock:
	bash scripts/uv pip compile --quiet --universal --python-version 3.12 --generate-hashes \
		requirements-dev.txt -o requirements-dev.lock
	bash scripts/uv pip compile --quiet --universal --python-version 3.12 --generate-hashes \
		requirements-run.txt -c requirements-dev.lock -o requirements-run.lock
	bash scripts/uv pip compile --quiet --universal --python-version 3.12 --generate-hashes \
		--no-deps requirements-durable.txt -o requirements-durable.lock

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/vulture
	$(PY) -m tools.diagrams --check
	$(PY) -m tools.openapi --check

diagrams: $(STAMP)
	$(PY) -m tools.diagrams

openapi: $(STAMP)
	$(PY) -m tools.openapi

unit: $(STAMP)
	$(PY) -m pytest tests/unit

# Chromium (Debian's, for the browser tests) installs in the background meanwhile;
# scripts/ensure-chromium then waits for it (one lock) or reports its failure.
# scripts/test: the local cloud and the deploys get a head start while the venv installs and lint
# runs, then pytest runs in several processes.
test: chromium-early
	bash scripts/test

chromium-early:
	@mkdir -p build/logs && (bash scripts/ensure-chromium > build/logs/chromium-install.log 2>&1 &)

# The local cloud installs and starts while the project venv installs (neither needs the other);
# tools.run_local then finds it up, or waits for it (both take the same lock), or reports its failure.
run demo:
	@mkdir -p build/logs && (bash localcloud/run start > build/logs/local-cloud-early.log 2>&1 &)
	@$(MAKE) --no-print-directory $(RUN_STAMP)
	$(PY) -m tools.run_local $(if $(filter demo,$@),--demo)

# Options for the flows' benchmark: make benchmark BENCHMARK_ARGS="--orders 20 --concurrency 1,8"
# and for the steady-state load: LOAD_ARGS="--customers 1,8 --seconds 30"
benchmark: $(STAMP)
	endpoint=$$(bash localcloud/run start | tail -n 1) && \
	AWS_ENDPOINT_URL=$$endpoint $(PY) -m deploy up --stage local && \
	AWS_ENDPOINT_URL=$$endpoint $(PY) -m deploy sam-up --stage local && \
	AWS_ENDPOINT_URL=$$endpoint $(PY) -m tools.benchmark_flows $(BENCHMARK_ARGS)
	AWS_ENDPOINT_URL=$$(bash localcloud/run start | tail -n 1) $(PY) -m tools.benchmark_load $(LOAD_ARGS)
	$(PY) -m localcloud.benchmark

# The full fault run (make test runs 10 orders per flow): 200 orders per flow, about 10 minutes.
# Other options: make fault-run FAULT_RUN_ARGS="--orders 200 --storage-fault-rate 0.6"
FAULT_RUN_ARGS ?= --orders 200
fault-run: $(STAMP)
	endpoint=$$(bash localcloud/run start | tail -n 1) && \
	AWS_ENDPOINT_URL=$$endpoint $(PY) -m tools.fault_run $(FAULT_RUN_ARGS)

# The long fuzz: over 1,000 generated requests checked against the OpenAPI description, and the
# token and request parsers' properties with 2,000 examples each (make test runs small samples).
fuzz: $(STAMP)
	ORDERS_PROPERTY_EXAMPLES=2000 $(PY) -m pytest -n 0 tests/unit/test_token_properties.py \
		tests/unit/test_request_properties.py
	ORDERS_FUZZ_EXAMPLES=150 ORDERS_FUZZ_MINIMUM_CASES=1000 $(PY) -m pytest tests/e2e/test_api_schema.py

deploy: $(RUN_STAMP)
	$(TARGET) $(PY) -m deploy up --stage $(STAGE)

# Both paths of the stage: nothing of it is left behind.
teardown: $(RUN_STAMP)
	$(TARGET) $(PY) -m deploy down --stage $(STAGE)
	$(TARGET) $(PY) -m deploy sam-down --stage $(STAGE)

localcloud-start: $(RUN_STAMP)
	bash localcloud/run start

localcloud-stop:
	bash localcloud/run stop

clean: localcloud-stop
	rm -rf $(VENV) vendor .localcloud build/chalice .chalice/deployments .chalice/deployed
