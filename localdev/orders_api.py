"""A small client of the orders API, and polling with a time limit.

Used by the end-to-end tests and by ``make demo``; standard library only.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

HAPPY_PATH = [
    "order_placed",
    "restaurant_notified",
    "order_accepted",
    "user_notified",
    "order_completed",
]


def eventually[T](
    check: Callable[[], T | None], timeout: float, what: str, every: float = 0.25
) -> T:
    """Poll ``check`` until it returns something truthy, for at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"not within {timeout:.0f}s: {what} (last seen: {last!r})")


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any
    headers: dict[str, str]


class OrdersApi:
    """The orders API over real HTTP (API Gateway in the local cloud, or chalice local)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")

    def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> Answer:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.base_url + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json", **(headers or {})},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return Answer(response.status, _json(response.read()), dict(response.headers))
        except urllib.error.HTTPError as error:
            return Answer(error.code, _json(error.read()), dict(error.headers))

    def place(self, order: dict[str, Any], **headers: str) -> str:
        answer = self.request("POST", "/orders", order, headers)
        assert answer.status == 202, answer
        return str(answer.body["order_id"])

    def order(self, order_id: str) -> dict[str, Any]:
        answer = self.request("GET", f"/orders/{order_id}")
        assert answer.status == 200, answer
        return dict(answer.body)

    def act(self, order_id: str, action: str, body: Any = None) -> Answer:
        return self.request("POST", f"/orders/{order_id}/{action}", body)

    def complete(self, order: dict[str, Any]) -> dict[str, Any]:
        """Place the order and play the restaurant through to delivery; the completed order."""
        return self.finish(self.place(order))

    def finish(self, order_id: str, poll: float = 0.25) -> dict[str, Any]:
        """Play the restaurant of a placed order through to delivery; the completed order."""
        self.wait_for(order_id, "RESTAURANT_NOTIFIED", poll=poll)
        accepted = self.act(order_id, "accept")
        assert accepted.status == 202, accepted
        self.wait_for(order_id, "USER_NOTIFIED", poll=poll)
        completed = self.act(order_id, "complete")
        assert completed.status == 202, completed
        return self.wait_for(order_id, "COMPLETED", poll=poll)

    def wait_for(
        self,
        order_id: str,
        status: str,
        timeout: float = 30,
        poll: float = 0.25,
        **expected_events: int,
    ) -> dict[str, Any]:
        """The order once it has ``status`` (and, if given, that many events of each type)."""

        def reached() -> dict[str, Any] | None:
            order = self.order(order_id)
            types = [entry["type"] for entry in order["timeline"]]
            counts_ok = all(types.count(name) >= n for name, n in expected_events.items())
            return order if order["status"] == status and counts_ok else None

        return eventually(
            reached,
            timeout,
            f"order {order_id} reaches {status} {expected_events or ''}",
            every=poll,
        )


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except json.JSONDecodeError:
        return raw.decode(errors="replace")


def stays_false(check: Callable[[], Any], duration: float, what: str, every: float = 0.5) -> None:
    """For a negative claim: ``check`` stays falsy for ``duration`` seconds."""
    deadline = time.monotonic() + duration
    while time.monotonic() < deadline:
        seen = check()
        assert not seen, f"{what}: {seen!r}"
        time.sleep(every)
