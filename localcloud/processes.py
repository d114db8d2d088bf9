"""Finding and ending the processes of one local cloud instance (Linux /proc, standard library).

A stop must leave nothing behind: LocalStack itself, DynamoDB Local's JVM, and the Lambda
function processes, which run in their own process groups so that a timeout can kill a function
together with anything it spawned.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterable
from pathlib import Path

PROC = Path("/proc")


def is_alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie waiting to be reaped."""
    try:
        state = (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state != "Z"


def command_line(pid: int) -> str:
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def _stat_fields(pid: int) -> list[str] | None:
    """proc(5) stat fields from field 3 (state) on; None if the process is gone."""
    try:
        return (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None


def _parent_of(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return None if fields is None else int(fields[1])


def cpu_ticks(pid: int, reaped_children: bool = False) -> int:
    """utime+stime of `pid` (clock ticks), plus cutime+cstime (children that ended and were
    reaped) if asked; 0 if the process is gone."""
    fields = _stat_fields(pid)
    if fields is None:
        return 0
    # Fields 14-17 of proc(5) (utime, stime, cutime, cstime); fields[0] here is field 3.
    return sum(int(value) for value in fields[11 : 15 if reaped_children else 13])


def started_at(pid: int) -> int | None:
    """When `pid` started (clock ticks since boot): with the pid, it names one process, as pids
    are reused; None if the process is gone."""
    fields = _stat_fields(pid)
    # Field 22 of proc(5), starttime.
    return None if fields is None else int(fields[19])


def _all_pids() -> list[int]:
    return [int(entry.name) for entry in PROC.iterdir() if entry.name.isdigit()]


def descendants(root_pid: int) -> set[int]:
    """Every living process below `root_pid` in the process tree (not `root_pid` itself)."""
    children: dict[int, list[int]] = {}
    for pid in _all_pids():
        parent = _parent_of(pid)
        if parent is not None:
            children.setdefault(parent, []).append(pid)
    found: set[int] = set()
    pending = [root_pid]
    while pending:
        for child in children.get(pending.pop(), []):
            if child not in found:
                found.add(child)
                pending.append(child)
    return found


def listening_on(port: int) -> int | None:
    """The process listening on TCP ``port`` of this machine (IPv4 or IPv6), if one of ours
    can be seen; None otherwise."""
    inodes = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = (PROC / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            # local_address is HEXIP:HEXPORT; state 0A is LISTEN; field 10 is the socket's inode.
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":
                inodes.add(f"socket:[{fields[9]}]")
    for pid in _all_pids() if inodes else []:
        try:
            descriptors = list((PROC / str(pid) / "fd").iterdir())
        except OSError:
            continue
        for descriptor in descriptors:
            try:
                if os.readlink(descriptor) in inodes:
                    return pid
            except OSError:
                continue
    return None


def processes_mentioning(marker: str) -> set[int]:
    """Processes whose command line contains `marker` (e.g. an instance's state directory).

    Catches function processes or a JVM that were re-parented after LocalStack died.
    """
    own = os.getpid()
    return {pid for pid in _all_pids() if pid != own and marker in command_line(pid)}


def send(pids: Iterable[int], sig: signal.Signals) -> None:
    """Signals each process and, where it leads its own group, the whole group."""
    for pid in pids:
        try:
            if os.getpgid(pid) == pid:
                os.killpg(pid, sig)
            else:
                os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def wait_until_gone(pids: Iterable[int], timeout: float) -> set[int]:
    """Waits up to `timeout` seconds; returns the processes still alive."""
    remaining = set(pids)
    deadline = time.monotonic() + timeout
    while remaining and time.monotonic() < deadline:
        remaining = {pid for pid in remaining if is_alive(pid)}
        if remaining:
            time.sleep(0.1)
    return {pid for pid in remaining if is_alive(pid)}
