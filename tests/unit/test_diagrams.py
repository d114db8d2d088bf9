"""The diagrams in docs/diagrams/ are what ``deploy/diagrams.py`` draws from the sources now."""

from __future__ import annotations

import copy
import functools
import json
import math
import xml.etree.ElementTree as ET
from typing import Any

import pytest

from chalicelib.orders.events import EventType
from chalicelib.orders.model import Flow
from chalicelib.subscriptions import SUBSCRIPTIONS, Subscription
from deploy import diagrams
from deploy.stages import ASL

SVG = "{http://www.w3.org/2000/svg}"
FRAUD_CHECK = Subscription("fraud-check", frozenset({EventType.ORDER_PLACED}), frozenset(Flow))
NESTED_ASL = {
    "StartAt": "Fan",
    "States": {
        "Fan": {
            "Type": "Parallel",
            "Branches": [
                {"StartAt": "Left", "States": {"Left": {"Type": "Pass", "End": True}}},
                {"StartAt": "Right", "States": {"Right": {"Type": "Succeed"}}},
            ],
            "Next": "Each",
        },
        "Each": {
            "Type": "Map",
            "ItemsPath": "$.items",
            "ItemProcessor": {
                "StartAt": "Item",
                "States": {"Item": {"Type": "Wait", "Seconds": 5, "End": True}},
            },
            "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Again"}],
            "End": True,
        },
        "Again": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.tries", "NumericLessThan": 3, "Next": "Fan"}],
            "Default": "Stop",
        },
        "Stop": {"Type": "Fail", "Error": "GaveUp"},
    },
}


@pytest.fixture
def asl() -> dict[str, Any]:
    definition: dict[str, Any] = json.loads(ASL.read_text())
    return definition


def test_the_committed_diagrams_are_current() -> None:
    stale = diagrams.stale()
    assert not stale, (
        f"stale diagrams in docs/diagrams/: {', '.join(stale)}; "
        "run `python -m tools.diagrams` and commit them"
    )


def test_drawing_is_deterministic(asl: dict[str, Any]) -> None:
    assert diagrams.state_machine_files(asl) == diagrams.state_machine_files(copy.deepcopy(asl))
    assert diagrams.choreography_files(SUBSCRIPTIONS) == diagrams.choreography_files(SUBSCRIPTIONS)


def test_a_new_state_changes_the_state_machine_diagram(asl: dict[str, Any]) -> None:
    changed = copy.deepcopy(asl)
    changed["States"]["ArchiveOrder"] = {"Type": "Pass", "End": True}
    del changed["States"]["CompleteOrder"]["End"]
    changed["States"]["CompleteOrder"]["Next"] = "ArchiveOrder"

    before = diagrams.state_machine_files(asl)
    after = diagrams.state_machine_files(changed)

    for name, text in after.items():
        assert text != before[name]
        assert "ArchiveOrder" in text
        assert "ArchiveOrder" not in before[name]


def test_the_state_machine_diagram_shows_the_definition(asl: dict[str, Any]) -> None:
    svg = diagrams.state_machine_files(asl)["order_flow.svg"]

    for name in asl["States"]:
        assert f">{name}<" in svg
    assert ">catch States.Timeout<" in svg  # a Catch edge, labelled with its ErrorEquals
    assert "&quot;accepted&quot;" in svg or '"accepted"' in svg  # a Choice rule
    assert ">deadline: $.restaurant_deadline_seconds<" in svg  # the restaurant's deadline
    assert ">retry R1, R2<" in svg and "up to 6 retries" in svg
    assert ">Fail · OrderWorkflowFailed<" in svg


def test_nested_machines_are_walked() -> None:
    files = diagrams.state_machine_files(NESTED_ASL)

    for text in files.values():
        for shown in ("Left", "Right", "Item", "Fan: every branch done", "Each: every item done"):
            assert shown in text
        assert "&lt; 3" in text or "#lt; 3" in text  # the loop back, a NumericLessThan rule


def test_a_transition_to_no_state_is_an_error() -> None:
    broken = {"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "Nowhere"}}}

    with pytest.raises(ValueError, match="Nowhere"):
        diagrams.state_machine_files(broken)


def test_a_new_subscription_changes_the_choreography_diagram() -> None:
    before = diagrams.choreography_files(SUBSCRIPTIONS)
    after = diagrams.choreography_files((*SUBSCRIPTIONS, FRAUD_CHECK))

    for name, text in after.items():
        assert text != before[name]
        assert "fraud-check" in text and "fraud-check" not in before[name]
    svg = after["choreography.svg"]
    assert ">orders-&lt;stage&gt;-fraud-check<" in svg  # its queue, named as the deploy does
    assert ">orders-&lt;stage&gt;-fraud-check-dlq<" in svg
    assert ">no consumer<" in svg  # no handler consumes it yet


def test_the_choreography_diagram_shows_each_consumer() -> None:
    consumers = {**diagrams.deployed_consumers(), FRAUD_CHECK: "fraud_checker"}

    svg = diagrams.choreography_files((*SUBSCRIPTIONS, FRAUD_CHECK), consumers)["choreography.svg"]

    for subscription, handler in consumers.items():
        assert f">{subscription.service}<" in svg
        assert f">{handler}<" in svg
    assert ">orders-&lt;stage&gt;-fraud_checker<" in svg
    assert ">no consumer<" not in svg
    assert ">delivery delay: the restaurant deadline<" in svg


def _rect(element: ET.Element) -> tuple[float, float, float, float]:
    x, y = float(element.get("x", 0)), float(element.get("y", 0))
    return x, y, x + float(element.get("width", 0)), y + float(element.get("height", 0))


def _overlap(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


@functools.cache
def _drawings() -> dict[str, str]:
    return {
        **{name: text for name, text in diagrams.render_all().items() if name.endswith(".svg")},
        "nested.svg": diagrams.state_machine_files(NESTED_ASL)["order_flow.svg"],
        "extra subscription.svg": diagrams.choreography_files((*SUBSCRIPTIONS, FRAUD_CHECK))[
            "choreography.svg"
        ],
    }


@pytest.mark.parametrize(
    "name", ["order_flow.svg", "choreography.svg", "nested.svg", "extra subscription.svg"]
)
def test_nothing_overlaps(name: str) -> None:
    root = ET.fromstring(_drawings()[name])
    groups = [g.find(f"{SVG}rect") for g in root.iter(f"{SVG}g")]
    boxes = [_rect(rect) for rect in groups if rect is not None]
    labels = [_rect(r) for r in root.findall(f"{SVG}rect") if r.get("rx") == "3"]
    assert boxes and len(labels) > 1

    for index, box in enumerate(boxes + labels):
        for other in (boxes + labels)[index + 1 :]:
            assert not _overlap(box, other), f"{name}: {box} overlaps {other}"
    # No edge crosses a box: edges start and end on a box's border, never inside one.
    for line in root.iter(f"{SVG}polyline"):
        points = [tuple(map(float, p.split(","))) for p in line.get("points", "").split()]
        for (x1, y1), (x2, y2) in zip(points, points[1:], strict=False):
            steps = max(1, math.ceil(math.hypot(x2 - x1, y2 - y1)))
            for step in range(steps + 1):
                x, y = x1 + (x2 - x1) * step / steps, y1 + (y2 - y1) * step / steps
                for box in boxes:
                    inside = box[0] + 2 < x < box[2] - 2 and box[1] + 2 < y < box[3] - 2
                    assert not inside, f"{name}: an edge crosses the box at {box}"
