"""What the processes of one test run share: a folder, locks, and what was made once.

The run is named by ``ORDERS_TEST_RUN``, set by pytest's first process (``tests/conftest.py``)
and inherited by the xdist workers it starts.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
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
