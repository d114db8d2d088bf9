"""What the processes of one test run share: a folder, locks, and what was made once.

The run is named by ``ORDERS_TEST_RUN``, set by pytest's first process (``tests/conftest.py``)
and inherited by the xdist workers it starts, or set before by ``scripts/test``, whose head
start deploys the local stage while lint runs: ``python -m tests.shared_run deploy-local`` (and
``deploy-sam-local``) make the run's deployments, which the tests' fixtures then read.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

PROJECT = Path(__file__).resolve().parents[1]
RUN_VARIABLE = "ORDERS_TEST_RUN"


def run_folder() -> Path:
    folder = PROJECT / "build" / "test-runs" / os.environ[RUN_VARIABLE]
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@contextlib.contextmanager
def run_lock(name: str, mode: int = fcntl.LOCK_EX) -> Iterator[None]:
    """A lock shared by the processes of this run (flock: released if a process dies)."""
    with (run_folder() / f"{name}.lock").open("a") as handle:
        fcntl.flock(handle, mode)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def once_per_run(name: str, make: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``make()``'s result, made by the first process of the run that asks; JSON."""
    with run_lock(name):
        done = run_folder() / f"{name}.json"
        if done.exists():
            return dict(json.loads(done.read_text()))
        result = make()
        done.write_text(json.dumps(result))
        return result


# Turns on the local cloud. Every local-cloud test holds a shared turn while it runs; a test (or
# the part of one) that changes what the others would see (the fault run's DynamoDB throttling)
# takes the exclusive turn: it waits until the tests running have ended and
# no other starts meanwhile (the gate: once an exclusive turn holds it, new turns wait there).
_shared_turn: IO[str] | None = None  # this process's, while a test holds it (one at a time)


def _through_the_gate() -> None:
    with run_lock("gate", fcntl.LOCK_SH):
        pass


@contextlib.contextmanager
def shared_turn() -> Iterator[None]:
    global _shared_turn
    _through_the_gate()
    with (run_folder() / "cloud.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_SH)
        _shared_turn = handle
        try:
            yield
        finally:
            _shared_turn = None
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def exclusive_turn() -> Iterator[None]:
    """The local cloud alone for the block. A test holding a shared turn lets it go first (two
    tests each holding one while waiting for the other's would wait forever), and takes it
    back after."""
    held = _shared_turn
    if held is not None:
        fcntl.flock(held, fcntl.LOCK_UN)
    try:
        with run_lock("gate"), run_lock("cloud"):
            yield
    finally:
        if held is not None:
            _through_the_gate()
            fcntl.flock(held, fcntl.LOCK_SH)


# The deployments of the local stage the tests use, by name in the run (``deployed()``).
DEPLOYMENTS = {
    "deploy-local": ("up", "--stage", "local"),
    "deploy-sam-local": ("sam-up", "--stage", "local"),
}


class DeployFailed(RuntimeError):
    """``python -m deploy`` failed; the message has its output."""


def deploy(environment: dict[str, str], *command: str) -> dict[str, Any]:
    """Run the project's deploy command with these variables (the cloud's); its outputs."""
    completed = subprocess.run(
        [sys.executable, "-m", "deploy", *command],
        cwd=PROJECT,
        env=os.environ | environment,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if completed.returncode != 0:
        raise DeployFailed(
            f"deploy {' '.join(command)} failed:\n{completed.stdout}\n{completed.stderr}"
        )
    print(completed.stderr, end="", file=sys.stderr)  # its progress, for a log
    outputs = completed.stderr.strip().splitlines()[-1].removeprefix("outputs written to ").strip()
    return dict(json.loads((PROJECT / outputs).read_text()))


def deployed(name: str, environment: dict[str, str]) -> dict[str, Any]:
    """The outputs of one of ``DEPLOYMENTS``, deployed once in this run: by ``scripts/test``'s
    head start, or else by the first test process that asks (a no-op deploy of the SAM path
    still packages and uploads the code: 30-60 s of a loaded machine, at the head of the
    slowest process's tests)."""
    return once_per_run(name, lambda: deploy(environment, *DEPLOYMENTS[name]))


if __name__ == "__main__":
    # scripts/test's head start: the cloud is the one AWS_ENDPOINT_URL names.
    parser = argparse.ArgumentParser(prog="python -m tests.shared_run")
    parser.add_argument("deployment", choices=sorted(DEPLOYMENTS))
    try:
        deployed(parser.parse_args().deployment, {})
    except DeployFailed as failed:
        sys.exit(str(failed))
