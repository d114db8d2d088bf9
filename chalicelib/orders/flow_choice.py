"""Which flow coordinates a new order that did not ask for one: weights, changed at run time.

The choice is a pure function of the weights and the order id, so a replayed request (same
Idempotency-Key, so same order id) lands on the same flow while the weights stay the same.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chalicelib.orders.model import Flow


class InvalidFlowWeightsError(ValueError):
    """The weights document is not ``{"choreography": int, "orchestration": int}`` (and
    optionally ``"durable": int``) with a positive total."""


# Flows a weights document may leave out, weighted 0: the ones added after weights were first
# stored, so a stage's stored document stays valid when a new style arrives.
OPTIONAL = frozenset({Flow.DURABLE})


@dataclass(frozen=True)
class FlowWeights:
    weights: Mapping[Flow, int]

    def __post_init__(self) -> None:
        # An OPTIONAL flow left out weighs 0, however the weights were made.
        object.__setattr__(self, "weights", dict.fromkeys(OPTIONAL, 0) | dict(self.weights))

    @classmethod
    def parse(cls, document: Any) -> FlowWeights:
        """Weights from their JSON document, e.g. ``{"choreography": 90, "orchestration": 10}``.

        Every flow must be given (0 turns one off), as a whole number >= 0, except the
        ``OPTIONAL`` ones (left out: 0); nothing else.
        """
        if not isinstance(document, dict):
            raise InvalidFlowWeightsError(f"flow weights must be a JSON object, not {document!r}")
        known = {flow.value for flow in Flow}
        required = known - {flow.value for flow in OPTIONAL}
        if not required <= set(document) <= known:
            raise InvalidFlowWeightsError(
                f"flow weights must name {sorted(required)} and may name "
                f"{sorted(known - required)}, not {sorted(document)}"
            )
        weights: dict[Flow, int] = dict.fromkeys(OPTIONAL, 0)
        for name, weight in document.items():
            if isinstance(weight, bool) or not isinstance(weight, int) or weight < 0:
                raise InvalidFlowWeightsError(
                    f"the weight of {name} must be a whole number >= 0, not {weight!r}"
                )
            weights[Flow(name)] = weight
        if sum(weights.values()) == 0:
            raise InvalidFlowWeightsError("at least one flow needs a weight above 0")
        return cls(weights)

    def to_document(self) -> dict[str, int]:
        """The JSON document; an OPTIONAL flow only when it has a weight, so the document of a
        stage that weights no new style is the one it always was."""
        return {
            flow.value: self.weights[flow]
            for flow in Flow
            if self.weights[flow] or flow not in OPTIONAL
        }

    def choose(self, order_id: str) -> Flow:
        """The flow for this order: its id hashed to a point, the weights cut into ranges."""
        total = sum(self.weights.values())
        point = int.from_bytes(hashlib.sha256(order_id.encode()).digest()[:8], "big") % total
        for flow in Flow:
            if point < self.weights[flow]:
                return flow
            point -= self.weights[flow]
        raise AssertionError("the weights add up to the total")  # pragma: no cover
