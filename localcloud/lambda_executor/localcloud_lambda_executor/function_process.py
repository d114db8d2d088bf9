"""One function process: spawn bootstrap.py, exchange messages with it, capture its output."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

BOOTSTRAP = Path(__file__).with_name("bootstrap.py")
# Must match bootstrap.END_MARKER.
END_MARKER = "\x1flocalcloud-invoke-end "
# Output kept for one invoke; beyond this older lines are dropped (a chatty function must not
# exhaust LocalStack's memory).
MAX_LOG_CHARS = 1_000_000


class ProcessExited(Exception):
    """The function process ended without answering."""

    def __init__(self, exit_code: int | None) -> None:
        super().__init__(f"exit status {exit_code}")
        self.exit_code = exit_code


class InitFailed(Exception):
    """The handler could not be loaded; `document` is the Lambda error to report."""

    def __init__(self, document: dict[str, Any]) -> None:
        super().__init__(document.get("errorMessage", "init failed"))
        self.document = document


@dataclass
class OutputCollector:
    """Collects the function's output lines and notices the end marker of each invoke."""

    lines: list[str] = field(default_factory=list)
    size: int = 0
    finished: set[str] = field(default_factory=set)
    closed: bool = False
    condition: threading.Condition = field(default_factory=threading.Condition)

    def add(self, line: str) -> None:
        with self.condition:
            if line.startswith(END_MARKER):
                self.finished.add(line[len(END_MARKER) :].strip())
            else:
                self.lines.append(line)
                self.size += len(line)
                while self.size > MAX_LOG_CHARS and len(self.lines) > 1:
                    self.size -= len(self.lines.pop(0))
            self.condition.notify_all()

    def close(self) -> None:
        with self.condition:
            self.closed = True
            self.condition.notify_all()

    def take(self, marker: str | None, timeout: float) -> str:
        """Returns and forgets the output so far, first waiting (bounded) for `marker`."""
        deadline = time.monotonic() + timeout
        with self.condition:
            while marker is not None and marker not in self.finished and not self.closed:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self.condition.wait(remaining)
            self.finished.discard(marker or "")
            text = "".join(self.lines)
            self.lines, self.size = [], 0
            return text


class FunctionProcess:
    """A Python interpreter running one function's handler, one invoke at a time."""

    def __init__(
        self,
        interpreter: Path,
        code_dir: Path,
        environment: dict[str, str],
        instance_dir: str,
        hook: str = "",
    ) -> None:
        self.output = OutputCollector()
        self._close_lock = threading.Lock()
        self._messages: queue.Queue[dict[str, Any]] = queue.Queue()
        requests_read, self._requests_write = os.pipe()
        responses_read, responses_write = os.pipe()
        self._process = subprocess.Popen(
            [
                str(interpreter),
                "-I",
                "-u",
                str(BOOTSTRAP),
                "--requests-fd",
                str(requests_read),
                "--responses-fd",
                str(responses_write),
                "--code-dir",
                str(code_dir),
                "--parent-pid",
                str(os.getpid()),
                "--instance-dir",
                instance_dir,
                "--hook",
                hook,
            ],
            cwd=code_dir,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            pass_fds=(requests_read, responses_write),
            # Own process group: a timeout kills the handler and whatever it spawned.
            start_new_session=True,
        )
        # Our copies of the child's ends: closing them lets us see EOF when the child dies.
        os.close(requests_read)
        os.close(responses_write)
        self.pid = self._process.pid
        self._responses = os.fdopen(responses_read, "rb")
        assert self._process.stdout is not None
        threading.Thread(
            target=self._read_output,
            args=(self._process.stdout,),
            daemon=True,
            name=f"lambda-output-{self.pid}",
        ).start()
        threading.Thread(
            target=self._read_messages, daemon=True, name=f"lambda-messages-{self.pid}"
        ).start()

    # --- reader threads ---

    def _read_output(self, stream: BinaryIO) -> None:
        for raw in iter(stream.readline, b""):
            self.output.add(raw.decode(errors="replace"))
        stream.close()
        self.output.close()

    def _read_messages(self) -> None:
        for raw in iter(self._responses.readline, b""):
            try:
                self._messages.put(json.loads(raw))
            except ValueError:
                self._messages.put(
                    {"type": "protocol_error", "line": raw[:200].decode(errors="replace")}
                )
        self._responses.close()
        self._messages.put({"type": "exited"})

    # --- protocol ---

    def _next_message(self, timeout: float) -> dict[str, Any]:
        """The next message; raises queue.Empty on timeout and ProcessExited if it died."""
        message = self._messages.get(timeout=max(timeout, 0.0))
        if message["type"] == "exited":
            self._messages.put(message)  # stays visible to later calls
            raise ProcessExited(self._process.wait(timeout=5))
        return message

    def wait_until_ready(self, timeout: float) -> None:
        """Waits for the handler to be imported; raises InitFailed, ProcessExited or queue.Empty."""
        message = self._next_message(timeout)
        if message["type"] == "init_error":
            raise InitFailed(message["error"])
        if message["type"] != "ready":
            raise ProcessExited(None)

    def invoke(self, request: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Sends one invoke and waits up to `timeout` s for its `result` or `error` message."""
        data = (json.dumps(request) + "\n").encode()
        try:
            while data:
                data = data[os.write(self._requests_write, data) :]
        except OSError:  # broken pipe, or already closed by kill()
            raise ProcessExited(self._process.poll()) from None
        return self._next_message(timeout)

    # --- life cycle ---

    def is_running(self) -> bool:
        return self._process.poll() is None

    def max_memory_mb(self) -> int | None:
        """Peak resident memory (VmHWM) of the process, for the REPORT log line."""
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) // 1024
        except (OSError, ValueError):
            pass
        return None

    def kill(self) -> None:
        """Kills the process group at once (handlers get no grace, as in Lambda)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._process.wait(timeout=5)
        with self._close_lock:
            if self._requests_write >= 0:
                os.close(self._requests_write)
                # Never close a number twice: the OS may have reused it for another file.
                self._requests_write = -1
