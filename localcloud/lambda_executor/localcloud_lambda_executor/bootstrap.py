"""The Lambda runtime loop, run as a script by the function's own interpreter.

Started by the executor as `python -I -u bootstrap.py ...` with the runtime venv's interpreter
(for `python3.13`, a venv with boto3 and nothing else), so this file uses the standard library
only and avoids syntax newer than Python 3.9.

Protocol (one JSON document per line): the executor writes `invoke` messages to the requests
pipe; this loop answers on the responses pipe with `ready` or `init_error` once, then one
`result` or `error` per invoke. Function output (stdout and stderr, one pipe) is the log; after
each invoke an end marker line tells the executor that the invoke's output is complete.
"""

from __future__ import annotations

import argparse
import decimal
import importlib
import importlib.util
import json
import logging
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

# Must match function_process.END_MARKER.
END_MARKER = "\x1flocalcloud-invoke-end "


class LambdaContext:
    """The `context` argument, with the attributes and methods of the AWS Python runtime's."""

    def __init__(self, request_id: str, invoked_function_arn: str, deadline_ms: int) -> None:
        self.aws_request_id = request_id
        self.invoked_function_arn = invoked_function_arn
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.identity = None
        self.client_context = None
        self.tenant_id = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(self._deadline_ms - int(time.time() * 1000), 0)

    def log(self, message: str) -> None:
        sys.stdout.write(message)


class RequestIdFilter(logging.Filter):
    """Adds the current request id to log records, as the Lambda runtime's log format uses it."""

    request_id = ""

    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = RequestIdFilter.request_id
        return True


def configure_logging() -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        logging.Formatter(
            "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n",
            "%Y-%m-%dT%H:%M:%S",
        )
    )
    handler.formatter.converter = time.gmtime  # type: ignore[union-attr]
    handler.addFilter(RequestIdFilter())
    logging.getLogger().addHandler(handler)
    if level := os.environ.get("AWS_LAMBDA_LOG_LEVEL"):
        logging.getLogger().setLevel(level.upper())


def error_document(
    error: BaseException, error_type: str | None = None, message: str | None = None
) -> dict[str, Any]:
    """An error in the shape Lambda returns: errorMessage, errorType, requestId, stackTrace."""
    return {
        "errorMessage": str(error) if message is None else message,
        "errorType": error_type or type(error).__name__,
        "requestId": RequestIdFilter.request_id,
        "stackTrace": traceback.format_list(user_frames(error)),
    }


def user_frames(error: BaseException) -> traceback.StackSummary:
    """The traceback without this runtime's own frames, as Lambda shows it."""
    frames = traceback.extract_tb(error.__traceback__)
    return traceback.StackSummary.from_list(
        [frame for frame in frames if frame.filename != __file__]
    )


def log_error(document: dict[str, Any]) -> None:
    """Writes the error to the function's log as the AWS Python runtime does."""
    lines = [f"[ERROR] {document['errorType']}: {document['errorMessage']}"]
    if document["stackTrace"]:
        lines.append("Traceback (most recent call last):")
        lines.extend(line.rstrip("\n") for line in document["stackTrace"])
    print("\n".join(lines), flush=True)


def load_handler(handler_name: str) -> Callable[[Any, LambdaContext], Any]:
    """Imports `module.function` (the module may be `dir/module`); raises InitError."""
    try:
        module_path, function_name = handler_name.rsplit(".", 1)
    except ValueError as error:
        raise InitError(
            error_document(
                error, "Runtime.MalformedHandlerName", f"Bad handler '{handler_name}': {error}"
            )
        ) from None
    module_name = module_path.replace("/", ".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise InitError(
            error_document(
                error,
                "Runtime.ImportModuleError",
                f"Unable to import module '{module_name}': {error}",
            )
        ) from None
    except SyntaxError as error:
        raise InitError(
            error_document(
                error,
                "Runtime.UserCodeSyntaxError",
                f"Syntax error in module '{module_name}': {error}",
            )
        ) from None
    except Exception as error:  # noqa: BLE001 - any failure of the user's module init
        raise InitError(error_document(error)) from None
    handler: Callable[[Any, LambdaContext], Any] | None = getattr(module, function_name, None)
    if handler is None:
        raise InitError(
            {
                "errorMessage": f"Handler '{function_name}' missing on module '{module_name}'",
                "errorType": "Runtime.HandlerNotFound",
                "requestId": "",
                "stackTrace": [],
            }
        )
    return handler


# The name the hook is imported under: its own, so it cannot collide with the function's modules.
HOOK_MODULE = "localcloud_function_hook"


def run_hook(path: str) -> None:
    """Imports the local cloud's function hook and calls its ``attach()``; raises InitError.

    ``path``: a module file or a package folder (loaded under HOOK_MODULE, so a package imports
    its own modules relatively). It runs in every function, after the code folder is on
    sys.path (it may import the function's modules) and before the handler is imported: the
    local cloud's way to add an instrument no deployment package carries.
    """
    location = os.path.abspath(path)
    is_package = os.path.isdir(location)
    try:
        spec = importlib.util.spec_from_file_location(
            HOOK_MODULE,
            os.path.join(location, "__init__.py") if is_package else location,
            submodule_search_locations=[location] if is_package else None,
        )
        if spec is None or spec.loader is None:
            raise ImportError(f"not a Python module or package: {location}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[HOOK_MODULE] = module
        spec.loader.exec_module(module)
        module.attach()
    except Exception as error:  # noqa: BLE001 - any failure of the hook fails the init, loudly
        raise InitError(
            error_document(error, message=f"local cloud function hook {location}: {error}")
        ) from None


class InitError(Exception):
    def __init__(self, document: dict[str, Any]) -> None:
        super().__init__(document["errorMessage"])
        self.document = document


def to_json(value: Any) -> str:
    """Serialises a handler result as the AWS runtime does (Decimal becomes a number)."""

    def default(unknown: Any) -> Any:
        if isinstance(unknown, decimal.Decimal):
            return int(unknown) if unknown == unknown.to_integral_value() else float(unknown)
        raise TypeError(f"Object of type {type(unknown).__name__} is not JSON serializable")

    return json.dumps(value, default=default)


def exit_with_parent(parent_pid: int) -> None:
    """Ends this process once LocalStack is gone, even in the middle of a long invoke.

    A parent-death signal would fire when the LocalStack *thread* that started us ends, which
    happens all the time in its thread pools; watching our parent pid is reliable.
    """

    def watch() -> None:
        while True:
            if os.getppid() != parent_pid:
                os._exit(1)
            time.sleep(0.5)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


class Channel:
    """Line-delimited JSON over the two pipes shared with the executor."""

    def __init__(self, requests_fd: int, responses_fd: int) -> None:
        self._requests = os.fdopen(requests_fd, "r", encoding="utf-8")
        self._responses_fd = responses_fd

    def receive(self) -> dict[str, Any] | None:
        line = self._requests.readline()
        return json.loads(line) if line else None

    def send(self, message: dict[str, Any]) -> None:
        data = (json.dumps(message) + "\n").encode()
        while data:
            written = os.write(self._responses_fd, data)
            data = data[written:]


def end_of_output(request_id: str) -> None:
    """Flushes the invoke's output, then marks its end in the (shared, ordered) output pipe."""
    sys.stdout.flush()
    sys.stderr.flush()
    os.write(1, f"{END_MARKER}{request_id}\n".encode())


def handle(handler: Callable[[Any, LambdaContext], Any], invoke: dict[str, Any]) -> dict[str, Any]:
    request_id = invoke["request_id"]
    RequestIdFilter.request_id = request_id
    os.environ["_X_AMZN_TRACE_ID"] = invoke.get("trace_id") or ""
    context = LambdaContext(request_id, invoke["invoked_function_arn"], invoke["deadline_ms"])
    try:
        event = json.loads(invoke["payload"]) if invoke.get("payload") else {}
        result = handler(event, context)
    except Exception as error:  # noqa: BLE001 - the function's error is the invoke's result
        document = error_document(error)
        log_error(document)
        return {"type": "error", "request_id": request_id, "error": document}
    try:
        payload = to_json(result)
    except (TypeError, ValueError) as error:
        document = error_document(
            error, "Runtime.MarshalError", f"Unable to marshal response: {error}"
        )
        document["stackTrace"] = []
        log_error(document)
        return {"type": "error", "request_id": request_id, "error": document}
    return {"type": "result", "request_id": request_id, "payload": payload}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests-fd", type=int, required=True)
    parser.add_argument("--responses-fd", type=int, required=True)
    parser.add_argument("--code-dir", required=True)
    parser.add_argument("--parent-pid", type=int, required=True)
    # Not used here: it puts the instance directory on our command line so that `run stop`
    # can find function processes that lost their parent.
    parser.add_argument("--instance-dir", default="")
    # LOCALCLOUD_FUNCTION_HOOK, passed on by the executor: see run_hook.
    parser.add_argument("--hook", default="")
    arguments = parser.parse_args()

    exit_with_parent(arguments.parent_pid)
    channel = Channel(arguments.requests_fd, arguments.responses_fd)
    # As in Lambda: the code directory first on sys.path and the working directory.
    sys.path.insert(0, arguments.code_dir)
    os.chdir(arguments.code_dir)
    configure_logging()

    try:
        if arguments.hook:
            run_hook(arguments.hook)
        handler = load_handler(os.environ.get("_HANDLER", ""))
    except InitError as error:
        log_error(error.document)
        end_of_output("init")
        channel.send({"type": "init_error", "error": error.document})
        sys.exit(1)
    end_of_output("init")
    channel.send({"type": "ready"})

    while (invoke := channel.receive()) is not None:
        response = handle(handler, invoke)
        end_of_output(invoke["request_id"])
        channel.send(response)


if __name__ == "__main__":
    main()
