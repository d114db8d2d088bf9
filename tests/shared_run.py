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
from typing import Any

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
