"""Unit tests: make run's lock is make test's for fewer libraries, and each lock is up to date.

One venv serves both: make run installs requirements-run.lock into it, make test syncs
requirements-dev.lock. Going from one to the other may add or remove libraries but must never
change one's version (`make lock` writes the run lock with the dev lock as constraints).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

PROJECT = Path(__file__).resolve().parents[2]
PINNED = re.compile(r"^(?P<name>[A-Za-z0-9._-]+)==(?P<version>[^\s;\\]+)")
HASH = re.compile(r"--hash=(?P<hash>\S+)")


@dataclass(frozen=True)
class Pin:
    version: str
    hashes: frozenset[str]


def locked(lock: str) -> dict[str, Pin]:
    """Library -> its version and the hashes of its files, as uv pip compile wrote them."""
    pins: dict[str, Pin] = {}
    name = ""
    for line in (PROJECT / lock).read_text().splitlines():
        if pinned := PINNED.match(line):
            name = canonicalize_name(pinned["name"])
            pins[name] = Pin(pinned["version"], frozenset())
        elif (found := HASH.search(line)) and name:
            pins[name] = Pin(pins[name].version, pins[name].hashes | {found["hash"]})
    return pins


def required(requirements: str) -> set[str]:
    """The libraries a requirements file names, with those of the files it includes (-r)."""
    names = set()
    for line in (PROJECT / requirements).read_text().splitlines():
        line = line.split("#")[0].strip()
        if line.startswith("-r "):
            names |= required(line.removeprefix("-r ").strip())
        elif line:
            names.add(canonicalize_name(Requirement(line).name))
    return names


def test_the_run_lock_pins_each_of_its_libraries_as_the_dev_lock_does() -> None:
    run, dev = locked("requirements-run.lock"), locked("requirements-dev.lock")
    assert {name: pin for name, pin in run.items() if dev.get(name) != pin} == {}
    # (the parse found them all, hashes included)
    assert len(run) > 20 and all(pin.hashes for pin in run.values())


def test_the_run_lock_holds_none_of_the_test_tools() -> None:
    assert not {"pytest", "checkov", "schemathesis", "playwright", "matplotlib"} & set(
        locked("requirements-run.lock")
    )


def test_each_lock_holds_what_its_requirements_name() -> None:
    # A library added to a requirements file without `make lock` would not be installed.
    for requirements, lock in [
        ("requirements-run.txt", "requirements-run.lock"),
        ("requirements-dev.txt", "requirements-dev.lock"),
    ]:
        assert required(requirements) - set(locked(lock)) == set(), lock
