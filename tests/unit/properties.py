"""What the property-based unit tests share: example counts, and generators of hostile input.

The unit suite stays fast with a few dozen examples per property; ``make fuzz`` (or
``ORDERS_PROPERTY_EXAMPLES=2000``) asks for many more. Examples are derandomized (the same
run every time, no flaky failures) and no example database is written.
"""

from __future__ import annotations

import json
import os
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from chalicelib.adapters.jwt_tokens import RefreshingJwks

EXAMPLES = int(os.environ.get("ORDERS_PROPERTY_EXAMPLES", "40"))

# The tests reuse the chalice test client and in-memory fakes across examples: they only add
# orders, which no property depends on.
property_settings = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# A leaf that json_text writes as a number of 5,000 digits: past the 4,300 that Python's int()
# reads from text (and json.dumps cannot write such an int itself).
HUGE = "\u0000huge-number\u0000"
HUGE_DIGITS = "9" * 5_000

json_values: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | st.just(HUGE),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)


def json_text(value: Any) -> str:
    """``value`` as JSON text (NaN and Infinity included), HUGE leaves as 5,000-digit numbers."""
    return json.dumps(value).replace(json.dumps(HUGE), HUGE_DIGITS)


class InMemoryJwks(RefreshingJwks):
    """The issuer's JWKS held in memory, read through the same cache the functions use."""

    def __init__(self, document: dict[str, Any]) -> None:
        super().__init__()
        self._document = json.dumps(document)

    @property
    def _source(self) -> str:
        return "the test's keys"

    def _read(self) -> tuple[str | bytes, float | None]:
        return self._document, None
