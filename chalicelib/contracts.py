"""JSON Schema checks at the edges: API bodies on the way in, events on publish and consume.

The schemas live in ``chalicelib/schemas`` (published with the code). Each event
type's schema refers to the shared envelope; the reference is inlined here
because the files are read from the package, not fetched by URI.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import fastjsonschema

from chalicelib.orders.errors import InvalidOrderError
from chalicelib.orders.events import Event, EventType

SCHEMAS = Path(__file__).parent / "schemas"
ENVELOPE_REF = "envelope.schema.json"


class InvalidEventError(ValueError):
    """A message that is not a valid order event: retrying it cannot help."""


def validate_request(schema_name: str, body: Any) -> dict[str, Any]:
    """Check an API request body; InvalidOrderError names the first offending field."""
    try:
        return _validator(f"api/{schema_name}.schema.json")(body)  # type: ignore[no-any-return]
    except fastjsonschema.JsonSchemaValueException as error:
        field, message = _describe(error)
        raise InvalidOrderError(field, message) from None


def event_from_message(raw: Any) -> Event:
    """Validate a consumed message body (dict or JSON text) against its event type's schema."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError as error:  # not JSON, or a number of more digits than int() reads
            raise InvalidEventError(f"not JSON: {error}") from None
    return Event.from_dict(_check_event(raw))


def event_to_message(event: Event) -> dict[str, Any]:
    """The event as its envelope, validated before it is published."""
    return _check_event(event.to_dict())


def event_schema_path(event_type: EventType) -> Path:
    return SCHEMAS / "events" / f"{event_type.value}.schema.json"


def _check_event(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise InvalidEventError("an event must be a JSON object")
    try:
        event_type = EventType(str(raw.get("type")))
    except ValueError:
        raise InvalidEventError(f"unknown event type {raw.get('type')!r}") from None
    try:
        return _validator(f"events/{event_type.value}.schema.json")(raw)  # type: ignore[no-any-return]
    except fastjsonschema.JsonSchemaValueException as error:
        field, message = _describe(error)
        raise InvalidEventError(f"{event_type.value} event: {field}: {message}") from None


@cache
def _validator(relative_path: str) -> Callable[[Any], Any]:
    schema = _load(SCHEMAS / relative_path)
    envelope = _load(SCHEMAS / "events" / ENVELOPE_REF)
    schema["allOf"] = [
        envelope if part == {"$ref": ENVELOPE_REF} else part for part in schema.get("allOf", [])
    ]
    validator: Callable[[Any], Any] = fastjsonschema.compile(
        schema, formats={"date-time": _is_date_time}
    )
    return validator


def _load(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as schema_file:
        return json.load(schema_file)  # type: ignore[no-any-return]


def _is_date_time(value: str) -> bool:
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _describe(error: fastjsonschema.JsonSchemaValueException) -> tuple[str, str]:
    """A field path a client recognises (``items[0].quantity``) and what is wrong with it."""
    field = error.name.removeprefix("data").lstrip(".")
    prefix = f"{field}." if field else ""
    if error.rule == "required" and isinstance(error.value, dict):
        missing = [name for name in error.rule_definition if name not in error.value]
        return f"{prefix}{missing[0]}", "is required"
    if error.rule == "additionalProperties" and isinstance(error.value, dict):
        allowed = set(error.definition.get("properties", {}))
        extra = sorted(name for name in error.value if name not in allowed)
        return f"{prefix}{extra[0]}", "is not an accepted field"
    if error.rule == "type" and not field:
        return "body", "must be a JSON object"
    message = error.message.removeprefix(error.name).strip()
    return field or "body", message
