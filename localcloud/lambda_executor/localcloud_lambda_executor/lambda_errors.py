"""Error documents the executor itself produces, in the shape Lambda returns them."""

from __future__ import annotations

import json
from typing import Any


def document(error_type: str, message: str, request_id: str = "") -> dict[str, Any]:
    return {
        "errorMessage": message,
        "errorType": error_type,
        "requestId": request_id,
        "stackTrace": [],
    }


def timed_out(request_id: str, timeout_seconds: float) -> dict[str, Any]:
    # As Lambda (and LocalStack's runtime init) report it.
    return document(
        "Sandbox.Timedout",
        f"RequestId: {request_id} Error: Task timed out after {timeout_seconds:.2f} seconds",
        request_id,
    )


def runtime_exited(request_id: str, exit_code: int | None) -> dict[str, Any]:
    reason = f"exit status {exit_code}" if exit_code is not None else "no reason"
    return document(
        "Runtime.ExitError",
        f"RequestId: {request_id} Error: Runtime exited with error: {reason}",
        request_id,
    )


def encode(error: dict[str, Any]) -> bytes:
    return json.dumps(error).encode()
