"""The Mermaid diagrams ``tools/diagrams.py`` generates, and the blocks it keeps in the docs."""

from __future__ import annotations

import fcntl
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chalicelib.entrypoints.choreography import HANDLERS
from chalicelib.orders.events import EventType
from chalicelib.orders.model import Flow
from chalicelib.subscriptions import SUBSCRIPTIONS, Subscription
from tools import diagrams

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
PAGE = """# A page

Text before.

<!-- diagram:order_flow -->
<!-- /diagram:order_flow -->

Between.

<!-- diagram:choreography -->
<!-- /diagram:choreography -->
Text after.
"""


def asl() -> dict[str, Any]:
    definition: dict[str, Any] = json.loads((diagrams.ROOT / diagrams.ASL).read_text())
    return definition


def transitions(definition: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """Every (state, next state) of an ASL definition and the machines nested in it."""
    for name, state in definition["States"].items():
        targets = [state.get("Next"), state.get("Default")]
        targets += [rule["Next"] for rule in state.get("Choices", [])]
        targets += [catcher["Next"] for catcher in state.get("Catch", [])]
        yield from ((name, target) for target in targets if target)
        for machine in [*state.get("Branches", []), state.get("ItemProcessor")]:
            yield from transitions(machine) if machine else ()


def state_names(definition: dict[str, Any]) -> Iterator[str]:
    for name, state in definition["States"].items():
        yield name
        for machine in [*state.get("Branches", []), state.get("ItemProcessor")]:
            yield from state_names(machine) if machine else ()


def project(tmp_path: Path, page: str = PAGE) -> Path:
    """A copy of the project's ASL and one page with both diagrams' markers."""
    (tmp_path / diagrams.ASL).parent.mkdir(parents=True)
    shutil.copy(diagrams.ROOT / diagrams.ASL, tmp_path / diagrams.ASL)
    (tmp_path / "docs" / "deeper").mkdir(parents=True)
    (tmp_path / "docs" / "deeper" / "page.md").write_text(page)
    return tmp_path


def test_the_embedded_diagrams_are_current() -> None:
    assert diagrams.main(["--check"]) == 0
    assert diagrams.sync(diagrams.ROOT, diagrams.rendered(), write=False) == []


@pytest.mark.parametrize("definition", [asl(), NESTED_ASL], ids=["order_flow", "nested"])
def test_the_state_machine_shows_every_state_and_transition(definition: dict[str, Any]) -> None:
    lines = diagrams.state_machine(definition).splitlines()
    stripped = [line.strip() for line in lines]

    assert lines[0] == "stateDiagram-v2"
    names = list(state_names(definition))
    assert len(names) > 3
    for name in names:
        assert any(line.startswith(f"{name} : {name}<br/>") for line in stripped), name
    for source, target in transitions(definition):
        assert any(line.startswith(f"{source} --> {target}") for line in stripped)


def test_the_state_machine_shows_waits_choices_and_catches() -> None:
    text = diagrams.state_machine(asl())

    assert "waits for its task token<br/>timeout $.restaurant_deadline_seconds" in text
    assert "RestaurantDecision --> AcceptOrder : StringEquals accepted" in text
    assert "RestaurantDecision --> CancelAfterFailure : otherwise" in text
    assert "NotifyRestaurant --> CancelAtDeadline : catch States.Timeout" in text
    assert "WorkflowFailed : WorkflowFailed<br/>Fail OrderWorkflowFailed" in text


def test_nested_machines_are_drawn_inside_their_state() -> None:
    text = diagrams.state_machine(NESTED_ASL)

    fan = text[text.index("state Fan {") : text.index("}", text.index("state Fan {"))]
    assert "[*] --> Left" in fan and "--" in fan and "[*] --> Right" in fan
    assert "Again --> Fan : NumericLessThan 3" in text


def test_a_transition_to_no_state_is_an_error() -> None:
    broken = {"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "Nowhere"}}}

    with pytest.raises(ValueError, match="Nowhere"):
        diagrams.state_machine(broken)


def test_the_choreography_shows_every_queue_filter_and_handler() -> None:
    text = diagrams.choreography(SUBSCRIPTIONS, HANDLERS)

    assert 'topic{{"SNS topic<br/>order events"}}' in text
    assert "relay_recorded_events" in text
    for subscription in SUBSCRIPTIONS:
        queue = "queue_" + subscription.service.replace("-", "_")
        assert f'{queue}[["SQS queue<br/>{subscription.service}' in text
        for values in subscription.filter_policy().values():
            assert ", ".join(values) in text
        handler = HANDLERS[subscription].__name__
        assert f'{queue} -->|"batches of 10"| handler_{handler}("{handler}")' in text
    assert text.count("delayed until the restaurant deadline") == sum(
        s.delayed_until_deadline for s in SUBSCRIPTIONS
    )


def test_a_subscription_without_a_handler_has_a_queue_and_no_consumer() -> None:
    text = diagrams.choreography((*SUBSCRIPTIONS, FRAUD_CHECK), HANDLERS)

    assert 'queue_fraud_check[["SQS queue<br/>fraud-check"]]' in text
    assert "queue_fraud_check -->" not in text


def test_rewriting_fills_the_blocks_and_is_idempotent(tmp_path: Path) -> None:
    root = project(tmp_path)
    page = root / "docs" / "deeper" / "page.md"

    assert diagrams.main([], root=root) == 0
    written = page.read_text()
    assert diagrams.main([], root=root) == 0
    assert diagrams.main(["--check"], root=root) == 0

    assert page.read_text() == written
    rendered = diagrams.rendered(root)
    assert written == PAGE.replace(
        "<!-- diagram:order_flow -->\n",
        f"<!-- diagram:order_flow -->\n```mermaid\n{rendered['order_flow']}```\n",
    ).replace(
        "<!-- diagram:choreography -->\n",
        f"<!-- diagram:choreography -->\n```mermaid\n{rendered['choreography']}```\n",
    )


def test_a_changed_source_fails_the_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = project(tmp_path)
    assert diagrams.main([], root=root) == 0
    changed = asl()
    changed["States"]["ArchiveOrder"] = {"Type": "Pass", "End": True}
    del changed["States"]["CompleteOrder"]["End"]
    changed["States"]["CompleteOrder"]["Next"] = "ArchiveOrder"
    (root / diagrams.ASL).write_text(json.dumps(changed))
    capsys.readouterr()

    assert diagrams.main(["--check"], root=root) == 1

    assert capsys.readouterr().err.splitlines() == [
        "docs/deeper/page.md: order_flow is stale: run `python -m tools.diagrams` and commit it"
    ]
    assert "ArchiveOrder" not in (root / "docs" / "deeper" / "page.md").read_text()
    assert diagrams.main([], root=root) == 0
    assert "CompleteOrder --> ArchiveOrder" in (root / "docs" / "deeper" / "page.md").read_text()


def test_an_edited_block_fails_the_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = project(tmp_path)
    (root / "README.md").write_text(PAGE)
    assert diagrams.main([], root=root) == 0
    readme = root / "README.md"
    readme.write_text(readme.read_text().replace("relay --> topic", "relay -.-> topic"))
    capsys.readouterr()

    assert diagrams.main(["--check"], root=root) == 1

    assert "README.md: choreography is stale" in capsys.readouterr().err
    assert diagrams.main([], root=root) == 0
    assert "relay --> topic" in readme.read_text()


@pytest.mark.parametrize(
    ("page", "message"),
    [
        ("<!-- diagram:sequence -->\n<!-- /diagram:sequence -->\n", "no diagram is called"),
        ("<!-- diagram:order_flow -->\n\n", "diagram:order_flow is never closed"),
        ("<!-- /diagram:order_flow -->\n", "line 1: /diagram:order_flow closes no open"),
        (
            "<!-- diagram:order_flow -->\n<!-- /diagram:choreography -->\n",
            "line 2: /diagram:choreography closes no open",
        ),
        (
            "<!-- diagram:order_flow -->\n<!-- diagram:choreography -->\n",
            "line 2: diagram:choreography opens before order_flow is closed",
        ),
    ],
)
def test_unbalanced_or_unknown_markers_fail(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], page: str, message: str
) -> None:
    root = project(tmp_path, page)
    (root / "README.md").write_text(PAGE)  # good markers, stale blocks

    assert diagrams.main(["--check"], root=root) == 1
    assert diagrams.main([], root=root) == 1

    error = capsys.readouterr().err
    assert "docs/deeper/page.md: " in error and message in error
    assert (root / "docs" / "deeper" / "page.md").read_text() == page
    assert (root / "README.md").read_text() == PAGE  # nothing is written while a file fails


# --- Mermaid's own parser ---------------------------------------------------------------------

PARSER_SOURCE = Path(__file__).parents[1] / "mermaid"
PARSER = diagrams.ROOT / "build" / "mermaid"


@pytest.fixture(scope="module")
def mermaid_parser() -> Path:
    """Mermaid and jsdom, installed by npm from tests/mermaid/'s lock file into build/mermaid."""
    PARSER.mkdir(parents=True, exist_ok=True)
    with (PARSER.parent / "mermaid.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one install, however many test processes ask
        files = ("package.json", "package-lock.json", "parse.mjs")
        copied = all(
            (PARSER / name).is_file()
            and (PARSER / name).read_bytes() == (PARSER_SOURCE / name).read_bytes()
            for name in files
        )
        if not copied or not (PARSER / "node_modules" / ".package-lock.json").is_file():
            for name in files:
                shutil.copy(PARSER_SOURCE / name, PARSER / name)
            subprocess.run(
                ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                cwd=PARSER,
                check=True,
            )
    return PARSER / "parse.mjs"


def test_every_diagram_is_valid_mermaid(mermaid_parser: Path, tmp_path: Path) -> None:
    blocks = {
        **diagrams.rendered(),
        "nested": diagrams.state_machine(NESTED_ASL),
        "no handler": diagrams.choreography((*SUBSCRIPTIONS, FRAUD_CHECK), HANDLERS),
        # The parser does reject: a label that is never closed.
        "broken": "flowchart LR\n    a -->|label| b[[unclosed\n",
    }
    for name, text in blocks.items():
        (tmp_path / f"{name}.mmd").write_text(text)

    parsed = subprocess.run(
        ["node", mermaid_parser, *sorted(tmp_path.glob("*.mmd"))],
        capture_output=True,
        text=True,
        check=False,
    )

    results = dict(line.split(": ", 1) for line in parsed.stdout.splitlines())
    expected = {"order_flow": "stateDiagram", "nested": "stateDiagram"}
    for name in blocks:
        result = results[str(tmp_path / f"{name}.mmd")]
        if name == "broken":
            assert result.startswith("error: Parse error")
        else:
            assert result == f"ok ({expected.get(name, 'flowchart-v2')})", f"{name}: {result}"
