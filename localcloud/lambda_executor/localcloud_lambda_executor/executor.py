"""LocalStack RuntimeExecutor that runs a Python function as a process on the host.

LocalStack creates one executor per execution environment and sends it one invoke at a time;
concurrent invokes get environments of their own. So each executor owns one process, which it
restarts (a new cold start, as in Lambda) after a timeout or a crash.
"""

from __future__ import annotations

import logging
import math
import os
import queue
import threading
import time
from collections import deque
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from localstack import config
from localstack.aws.api.lambda_ import PackageType
from localstack.services.lambda_.invocation.executor_endpoint import StatusErrorException
from localstack.services.lambda_.invocation.lambda_models import FunctionVersion, InvocationResult
from localstack.services.lambda_.invocation.runtime_executor import (
    LambdaRuntimeException,
    RuntimeExecutor,
)

from localcloud_lambda_executor import lambda_errors, shared_code
from localcloud_lambda_executor.function_process import (
    FunctionProcess,
    InitFailed,
    ProcessExited,
)
from localcloud_lambda_executor.xray import FunctionSegment, carried_trace_header

LOG = logging.getLogger(__name__)
HOST = "127.0.0.1"
# Output of an invoke arriving after its answer is awaited this long before the logs are sent.
OUTPUT_DRAIN_SECONDS = 2.0
KILLED_OUTPUT_DRAIN_SECONDS = 0.5


def runtimes_dir() -> Path:
    """Set by `localcloud/run start`: one venv per runtime, e.g. <dir>/python3.13/bin/python."""
    return Path(os.environ.get("LOCALCLOUD_RUNTIMES_DIR", ".localcloud/runtimes"))


def interpreter_for(runtime: str | None) -> Path:
    """The interpreter of a Lambda runtime; raises with what to do if it is not available."""
    if not runtime or not runtime.startswith("python"):
        raise LambdaRuntimeException(
            f"Runtime {runtime!r} is not supported by the local-process executor: "
            "only Python runtimes run as local processes"
        )
    interpreter = runtimes_dir() / runtime / "bin" / "python"
    if not interpreter.exists():
        version = runtime.removeprefix("python")
        raise LambdaRuntimeException(
            f"Lambda runtime {runtime} is not available on this machine (no {interpreter}). "
            f"Install Python {version} (PATH, pyenv or uv), run "
            f"`LOCALCLOUD_RUNTIMES={runtime} bash localcloud/run install`, then restart"
        )
    return interpreter


class LocalProcessRuntimeExecutor(RuntimeExecutor):
    def __init__(self, id: str, function_version: FunctionVersion) -> None:
        super().__init__(id=id, function_version=function_version)
        self._environment: dict[str, str] = {}
        self._process: FunctionProcess | None = None
        # Recent output of this environment, for LocalStack's get_logs (start-up diagnostics).
        self._all_output: deque[str] = deque(maxlen=20)
        self._invoke_lock = threading.Lock()
        self._stopped = threading.Event()
        self._cold_start_ms: float | None = None

    # --- RuntimeExecutor: version preparation ---

    @classmethod
    def prepare_version(cls, function_version: FunctionVersion) -> None:
        if function_version.config.package_type != PackageType.Zip:
            raise LambdaRuntimeException(
                "Container image functions need Docker; the local-process executor runs zip "
                "packages only"
            )
        interpreter_for(function_version.config.runtime)
        if function_version.config.code:
            shared_code.code_dir(function_version.config.code)

    @classmethod
    def cleanup_version(cls, function_version: FunctionVersion) -> None:
        # Environments (and so processes) are stopped by LocalStack before this is called; the
        # unzipped package may serve other functions (shared_code), and goes with the instance.
        pass

    @classmethod
    def validate_environment(cls) -> bool:
        if not runtimes_dir().is_dir():
            LOG.warning(
                "LOCALCLOUD_RUNTIMES_DIR %s does not exist: no Lambda runtime", runtimes_dir()
            )
            return False
        return True

    # --- RuntimeExecutor: addresses (everything is on this host) ---

    def get_address(self) -> str:
        return HOST

    def get_endpoint_from_executor(self) -> str:
        return HOST

    def get_runtime_endpoint(self) -> str:
        # Not used by our processes (they talk over pipes); kept meaningful for LocalStack's env.
        return f"http://{HOST}:{config.GATEWAY_LISTEN[0].port}/_localstack_lambda/{self.id}"

    # --- RuntimeExecutor: life cycle ---

    def start(self, env_vars: dict[str, str]) -> None:
        self._environment = self._function_environment(env_vars)
        try:
            self._spawn()
        except InitFailed as failure:
            # LocalStack reports this payload as the invoke's error (Lambda's init error).
            raise StatusErrorException(
                "Environment startup failed", payload=lambda_errors.encode(failure.document)
            ) from None

    def stop(self) -> None:
        """Kills the process; may run while an invoke waits (function deletion, shutdown)."""
        self._stopped.set()
        if (process := self._process) is not None:
            process.kill()

    def get_logs(self) -> str:
        if self._process is not None:
            self._all_output.append(self._process.output.take(None, 0))
        return "".join(self._all_output)

    # --- RuntimeExecutor: invoke ---

    def invoke(self, payload: dict[str, str]) -> InvocationResult:
        request_id = payload["invoke-id"]
        timeout = float(self.function_version.config.timeout)
        with self._invoke_lock:
            began = time.monotonic()
            if self._stopped.is_set():
                raise LambdaRuntimeException(f"execution environment {self.id} is stopped")
            process = self._process
            if process is None or not process.is_running():
                try:
                    process = self._spawn()  # restart after a timeout or a crash
                except InitFailed as failure:
                    return self._result(request_id, failure.document, is_error=True, logs="")
                began = time.monotonic()  # Duration excludes the init, as in Lambda's REPORT
            segment = self._function_segment(payload)
            request = {
                "request_id": request_id,
                "invoked_function_arn": payload["invoked-function-arn"],
                "payload": payload.get("payload") or "",
                "trace_id": segment.header if segment else payload.get("trace-id") or "",
                "deadline_ms": int(time.time() * 1000 + timeout * 1000),
            }
            answer, drain = self._exchange(process, request, timeout)
            if segment is not None and self._actively_traced():
                segment.send(error=answer["type"] != "result")
            duration_ms = (time.monotonic() - began) * 1000
            output = process.output.take(request_id, drain)
            self._all_output.append(output)
            logs = self._lambda_log(request_id, output, answer, duration_ms, process)
            if answer["type"] == "result":
                return InvocationResult(request_id, answer["payload"].encode(), False, logs)
            return self._result(request_id, answer["error"], is_error=True, logs=logs)

    # --- helpers ---

    def _function_segment(self, payload: dict[str, str]) -> FunctionSegment | None:
        """This invoke's segment, in the trace the payload carries (as AWS continues it) or
        else in LocalStack's; see xray.py for what AWS does here and LocalStack does not."""
        header = carried_trace_header(payload.get("payload") or "") or payload.get("trace-id")
        if not header:
            return None
        arn = payload["invoked-function-arn"]
        return FunctionSegment.begin(header, self.function_version.id.function_name, arn)

    def _actively_traced(self) -> bool:
        return str(self.function_version.config.tracing_config_mode) == "Active"

    def _exchange(
        self, process: FunctionProcess, request: dict[str, Any], timeout: float
    ) -> tuple[dict[str, Any], float]:
        """Runs one invoke; returns the answer and how long to wait for remaining output."""
        request_id = request["request_id"]
        try:
            answer = process.invoke(request, timeout)
            if answer["type"] in ("result", "error"):
                return answer, OUTPUT_DRAIN_SECONDS
            LOG.warning("unexpected message from function process: %s", answer)
            process.kill()
            return {"type": "error", "error": lambda_errors.runtime_exited(request_id, None)}, 0
        except queue.Empty:
            process.kill()
            return {
                "type": "error",
                "timed_out": True,
                "error": lambda_errors.timed_out(request_id, timeout),
            }, KILLED_OUTPUT_DRAIN_SECONDS
        except ProcessExited as exited:
            if self._stopped.is_set():
                raise LambdaRuntimeException(
                    f"execution environment {self.id} was stopped"
                ) from None
            return {
                "type": "error",
                "error": lambda_errors.runtime_exited(request_id, exited.exit_code),
            }, KILLED_OUTPUT_DRAIN_SECONDS

    def _spawn(self) -> FunctionProcess:
        """Starts the function process and waits for its handler to load (the init phase)."""
        if self._process is not None:
            self._process.kill()
        began = time.monotonic()
        process = FunctionProcess(
            interpreter=interpreter_for(self.function_version.config.runtime),
            code_dir=self._code_dir(),
            environment=self._environment,
            instance_dir=os.environ.get("LOCALCLOUD_INSTANCE_DIR", ""),
            # Set by `localcloud/run start`: what each function process runs before its handler.
            hook=os.environ.get("LOCALCLOUD_FUNCTION_HOOK", ""),
        )
        self._process = process
        if self._stopped.is_set():  # stop() raced with this start
            process.kill()
            raise LambdaRuntimeException(f"execution environment {self.id} was stopped")
        try:
            process.wait_until_ready(timeout=float(config.LAMBDA_RUNTIME_ENVIRONMENT_TIMEOUT))
        except InitFailed:
            self._all_output.append(process.output.take("init", OUTPUT_DRAIN_SECONDS))
            process.kill()
            raise
        except (ProcessExited, queue.Empty) as failure:
            self._all_output.append(process.output.take("init", KILLED_OUTPUT_DRAIN_SECONDS))
            process.kill()
            raise LambdaRuntimeException(
                f"function process did not start ({failure}); output:\n{self.get_logs()}"
            ) from None
        self._cold_start_ms = (time.monotonic() - began) * 1000
        return process

    def _code_dir(self) -> Path:
        """The deployment package's unzipped copy (prepare_version made sure of it)."""
        code = self.function_version.config.code
        if code is None:
            raise LambdaRuntimeException("the local-process executor needs a zip package")
        return shared_code.code_dir(code)

    def _function_environment(self, env_vars: dict[str, Any]) -> dict[str, str]:
        """The environment LocalStack computed, adapted to a process on this host."""
        environment = {name: str(value) for name, value in env_vars.items()}
        runtime = self.function_version.config.runtime or ""
        interpreter = interpreter_for(runtime)
        environment.update(
            {
                "LAMBDA_TASK_ROOT": str(self._code_dir()),
                "LAMBDA_RUNTIME_DIR": str(interpreter.parent.parent),
                "AWS_EXECUTION_ENV": f"AWS_Lambda_{runtime}",
                "PATH": f"{interpreter.parent}:{os.environ.get('PATH', '/usr/bin:/bin')}",
                "LANG": "en_US.UTF-8",
                "PYTHONDONTWRITEBYTECODE": "1",
            }
        )
        # The X-Ray SDK sends segments to this UDP address; pass the host's choice through.
        if daemon := os.environ.get("AWS_XRAY_DAEMON_ADDRESS"):
            address, _, port = daemon.rpartition(":")
            environment.update(
                {
                    "AWS_XRAY_DAEMON_ADDRESS": daemon,
                    "_AWS_XRAY_DAEMON_ADDRESS": address,
                    "_AWS_XRAY_DAEMON_PORT": port,
                }
            )
        return environment

    def _lambda_log(
        self,
        request_id: str,
        output: str,
        answer: dict[str, Any],
        duration_ms: float,
        process: FunctionProcess,
    ) -> str:
        """The invoke's log as Lambda writes it: START, the function's output, END, REPORT."""
        version = self.function_version.id.qualifier
        lines = [f"START RequestId: {request_id} Version: {version}\n", output]
        if answer.get("timed_out"):
            stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            timeout = float(self.function_version.config.timeout)
            lines.append(f"{stamp} {request_id} Task timed out after {timeout:.2f} seconds\n")
        report = (
            f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\t"
            f"Billed Duration: {math.ceil(duration_ms)} ms\t"
            f"Memory Size: {self.function_version.config.memory_size} MB"
        )
        if (peak := process.max_memory_mb()) is not None:
            report += f"\tMax Memory Used: {peak} MB"
        if self._cold_start_ms is not None:
            report += f"\tInit Duration: {self._cold_start_ms:.2f} ms"
            self._cold_start_ms = None  # only the first invoke of a process is a cold one
        lines += [f"END RequestId: {request_id}\n", report + "\n"]
        return "".join(lines)

    @staticmethod
    def _result(
        request_id: str, error: dict[str, Any], is_error: bool, logs: str
    ) -> InvocationResult:
        return InvocationResult(request_id, lambda_errors.encode(error), is_error, logs)
