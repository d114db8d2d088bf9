"""A small client of the orders API, and polling with a time limit.

Used by the end-to-end tests, ``make demo`` and the benchmark. It speaks for each
party of the orders it places: the customer places, reads and cancels; the
restaurant accepts, rejects and completes, each with a bearer token of its own
from the local development issuer (``localdev/dev_issuer.py``).
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


# Each poll of an order is a request through the API (a function invoked, a table read): on a
# shared local cloud, polling at 2/s rather than 4/s leaves it to the work being waited for.
POLL_SECONDS = 0.5


def eventually[T](
    check: Callable[[], T | None], timeout: float, what: str, every: float = POLL_SECONDS
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


# How long place_answer keeps placing an order the system refuses as saturated.
SATURATED_PATIENCE = 60

# Who calls a route by default: the restaurant answers, the customer does the rest.
RESTAURANT_ACTIONS = frozenset({"accept", "reject", "complete"})
Party = tuple[str, str]  # (role, id): ("customer", "customer-42")
TokenSource = Callable[[str, str], str]


def development_tokens(stage: str = "local") -> TokenSource:
    """Tokens from the local development issuer, made once per principal."""
    from deploy.stages import load_stage
    from localdev import dev_issuer

    made: dict[Party, str] = {}

    def token(role: str, principal_id: str) -> str:
        if (role, principal_id) not in made:
            made[role, principal_id] = dev_issuer.token(load_stage(stage), role, principal_id)
        return made[role, principal_id]

    return token


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any
    headers: dict[str, str]


class OrdersApi:
    """The orders API over real HTTP (API Gateway in the local cloud, or chalice local)."""

    def __init__(self, base_url: str, tokens: TokenSource | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.tokens = tokens or development_tokens()
        # The customer and restaurant of each order this client placed, and its trace.
        self.parties: dict[str, tuple[Party, Party]] = {}
        self.traces: dict[str, str] = {}

    def bearer(self, role: str, principal_id: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens(role, principal_id)}"}

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        as_party: Party | None = None,
    ) -> Answer:
        """One call; ``as_party`` adds that principal's token, ``headers`` may set any."""
        data = None if body is None else json.dumps(body).encode()
        sent = {"Content-Type": "application/json"}
        if as_party is not None:
            sent |= self.bearer(*as_party)
        request = urllib.request.Request(
            self.base_url + path, data=data, method=method, headers=sent | (headers or {})
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return Answer(response.status, _json(response.read()), dict(response.headers))
        except urllib.error.HTTPError as error:
            return Answer(error.code, _json(error.read()), dict(error.headers))

    def place(self, order: dict[str, Any], **headers: str) -> str:
        answer = self.place_answer(order, **headers)
        assert answer.status == 202, answer
        return str(answer.body["order_id"])

    def place_answer(self, order: dict[str, Any], **headers: str) -> Answer:
        """POST /orders as the order's customer; remembers the parties of the order placed.

        While the system answers 503 ``saturated`` (as many orders in flight as it admits), it
        places the order again after each Retry-After, as a client should, for at most
        ``SATURATED_PATIENCE`` seconds; then it returns that answer."""
        customer = ("customer", str(order.get("customer_id")))
        patience = time.monotonic() + SATURATED_PATIENCE
        answer = self.request("POST", "/orders", order, headers, as_party=customer)
        while retry_after(answer) is not None and time.monotonic() < patience:
            time.sleep(retry_after(answer) or 1)
            answer = self.request("POST", "/orders", order, headers, as_party=customer)
        if answer.status == 202:
            restaurant = ("restaurant", str(order.get("restaurant_id")))
            self.parties[answer.body["order_id"]] = (customer, restaurant)
            if "trace_header" in answer.body:
                self.traces[answer.body["order_id"]] = answer.body["trace_header"]
        return answer

    def order(self, order_id: str) -> dict[str, Any]:
        answer = self.request(
            "GET",
            f"/orders/{order_id}",
            headers=self._in_trace(order_id),
            as_party=self._customer(order_id),
        )
        assert answer.status == 200, answer
        return dict(answer.body)

    def act(self, order_id: str, action: str, body: Any = None) -> Answer:
        """An action as the party that takes it: the restaurant answers, the customer cancels."""
        customer, restaurant = self._parties(order_id)
        party = restaurant if action in RESTAURANT_ACTIONS else customer
        path = f"/orders/{order_id}/{action}"
        return self.request("POST", path, body, headers=self._in_trace(order_id), as_party=party)

    def _in_trace(self, order_id: str) -> dict[str, str]:
        """The order's trace header, as a client continuing the order's trace sends it."""
        trace = self.traces.get(order_id)
        return {"X-Amzn-Trace-Id": trace} if trace else {}

    def _customer(self, order_id: str) -> Party:
        return self._parties(order_id)[0]

    def _parties(self, order_id: str) -> tuple[Party, Party]:
        if order_id not in self.parties:
            raise KeyError(f"order {order_id} was not placed by this client: call request()")
        return self.parties[order_id]

    def complete(self, order: dict[str, Any]) -> dict[str, Any]:
        """Place the order and play the restaurant through to delivery; the completed order."""
        return self.finish(self.place(order))

    def finish(self, order_id: str, poll: float = POLL_SECONDS) -> dict[str, Any]:
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
        poll: float = POLL_SECONDS,
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


def retry_after(answer: Answer) -> int | None:
    """The seconds to wait before placing the order again if the system refused it as
    saturated (503 ``saturated`` with Retry-After); None for any other answer."""
    if answer.status != 503 or not isinstance(answer.body, dict):
        return None
    if answer.body.get("code") != "saturated":
        return None
    return int(answer.headers.get("Retry-After", "1"))


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
