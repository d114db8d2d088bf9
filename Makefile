# The two commands a user needs:  make run  (the whole system, locally)  and  make test.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
STAGE ?= dev
# make run's progress lines count from here, installs included.
export ORDERS_RUN_STARTED := $(shell date +%s.%N)
# Local stages go to the local cloud (started if needed); others to your AWS account.
ifneq ($(filter local%,$(STAGE)),)
TARGET := AWS_ENDPOINT_URL=$$(bash localcloud/run start | tail -n 1)
endif

.PHONY: help venv lock test chromium-early unit lint run demo benchmark fault-run diagrams openapi deploy teardown localcloud-start localcloud-stop clean

help:
	@echo "make run        start the local cloud, deploy both paths, serve the orders API (chalice local)"
	@echo "make test       lint, type-check and run every test (unit, local cloud, end to end)"
	@echo "make unit       only the unit tests (no cloud needed)"
	@echo "make demo       like run, and first place one order through each flow and print both timelines"
	@echo "make benchmark  time both flows on the local cloud (and the local cloud itself); prints figures"
	@echo "make fault-run  both flows under injected faults; counts lost, doubled and stuck orders"
	@echo "make deploy STAGE=dev / make teardown STAGE=dev   (an AWS account: no AWS_ENDPOINT_URL set)"
	@echo "make teardown STAGE=local   remove both local deployments from the local cloud"
	@echo "make diagrams   redraw docs/diagrams/ (state machine, choreography) from the source"
	@echo "make openapi    rewrite docs/openapi.json (the API's description) from the routes and schemas"
	@echo "make localcloud-start / localcloud-stop"

# Exactly the versions in requirements-dev.lock (made by `make lock`), installed with uv.
$(STAMP): requirements-dev.lock scripts/find-python scripts/uv
	@test -x $(PY) || bash scripts/uv venv --quiet --python "$$(bash scripts/find-python)" $(VENV)
	bash scripts/uv pip sync --quiet --python $(PY) requirements-dev.lock
	@touch $@

venv: $(STAMP)

lock:
	bash scripts/uv pip compile --quiet --universal --python-version 3.12 --generate-hashes \
		requirements-dev.txt -o requirements-dev.lock

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

# Chromium (Debian's, for the browser tests) installs in the background while the venv installs
# and lint runs; scripts/ensure-chromium then waits for it (one lock) or reports its failure.
test: chromium-early $(STAMP) lint
	bash localcloud/run install
	@bash scripts/ensure-chromium > /dev/null
	$(PY) -m pytest

chromium-early:
	@mkdir -p build/logs && (bash scripts/ensure-chromium > build/logs/chromium-install.log 2>&1 &)

# The local cloud installs and starts while the project venv installs (neither needs the other);
# tools.run_local then finds it up, or waits for it (both take the same lock), or reports its failure.
run demo:
	@mkdir -p build/logs && (bash localcloud/run start > build/logs/local-cloud-early.log 2>&1 &)
	@$(MAKE) --no-print-directory venv
	$(PY) -m tools.run_local $(if $(filter demo,$@),--demo)

# Options for the flows' benchmark: make benchmark BENCHMARK_ARGS="--orders 20 --concurrency 1,8"
benchmark: $(STAMP)
	endpoint=$$(bash localcloud/run start | tail -n 1) && \
	AWS_ENDPOINT_URL=$$endpoint $(PY) -m deploy up --stage local && \
	AWS_ENDPOINT_URL=$$endpoint $(PY) -m tools.benchmark_flows $(BENCHMARK_ARGS)
	$(PY) -m localcloud.benchmark

# Options for the fault run: make fault-run FAULT_RUN_ARGS="--orders 200 --storage-fault-rate 0.6"
FAULT_RUN_ARGS ?= --orders 20
fault-run: $(STAMP)
	endpoint=$$(bash localcloud/run start | tail -n 1) && \
	AWS_ENDPOINT_URL=$$endpoint $(PY) -m tools.fault_run $(FAULT_RUN_ARGS)

deploy: $(STAMP)
	$(TARGET) $(PY) -m deploy up --stage $(STAGE)

# Both paths of the stage: nothing of it is left behind.
teardown: $(STAMP)
	$(TARGET) $(PY) -m deploy down --stage $(STAGE)
	$(TARGET) $(PY) -m deploy sam-down --stage $(STAGE)

localcloud-start: $(STAMP)
	bash localcloud/run start

localcloud-stop:
	bash localcloud/run stop

clean: localcloud-stop
	rm -rf $(VENV) .localcloud build/chalice .chalice/deployments .chalice/deployed
