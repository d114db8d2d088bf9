"""``python -m tools.diagrams [--check]``: the Mermaid diagrams embedded in the docs.

Two diagrams, each generated from the declaration it shows:
- ``order_flow``: the Step Functions state machine, from ``statemachines/order_flow.asl.json``;
- ``choreography``: the order-events topic, one queue per subscription with its filter policy
  (``chalicelib/subscriptions.py``) and the handler that consumes it
  (``chalicelib/entrypoints/choreography.py``).

In README.md and docs/**/*.md, a diagram sits between two marker lines, at the start of a line::

    <!-- diagram:order_flow -->
    ```mermaid
    ...
    ```
    <!-- /diagram:order_flow -->

The command rewrites the block between every such pair. ``--check`` writes nothing and exits 1,
naming the file and the diagram, when a block differs from what the sources give now; a marker
that is unknown, unclosed or closes another diagram fails both.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from chalicelib.entrypoints.choreography import HANDLERS
from chalicelib.entrypoints.relay import relay_recorded_events
from chalicelib.functions import QUEUE_BATCH
from chalicelib.subscriptions import SUBSCRIPTIONS, Subscription

ROOT = Path(__file__).resolve().parents[1]
ASL = Path("statemachines", "order_flow.asl.json")
COMMAND = "python -m tools.diagrams"
MARKER = re.compile(r"^<!-- (/?)diagram:(\S+) -->$", re.MULTILINE)
Json = Mapping[str, Any]


class MarkerError(ValueError):
    """A diagram marker that is unknown, unclosed or closes another diagram."""


# --- the state machine: stateDiagram-v2 -------------------------------------------------------


def _rule(rule: Json) -> str:
    """A Choice rule as short text, e.g. ``StringEquals accepted``."""
    if "Not" in rule:
        return f"not ({_rule(rule['Not'])})"
    for joiner in ("And", "Or"):
        if joiner in rule:
            return f" {joiner.lower()} ".join(f"({_rule(inner)})" for inner in rule[joiner])
    tests = [(k, v) for k, v in rule.items() if k not in ("Variable", "Next", "Comment")]
    return " ".join(f"{k} {v if isinstance(v, str) else json.dumps(v)}" for k, v in tests)


def _describe(state: Json) -> list[str]:
    """What a state does, beyond its name and its transitions."""
    kind = state["Type"]
    if kind == "Task":
        function = str(state.get("Parameters", {}).get("FunctionName", state.get("Resource", "")))
        lines = [f"Task {function.removeprefix('${').removesuffix('Arn}')}"]
        if str(state.get("Resource", "")).endswith(".waitForTaskToken"):
            lines.append("waits for its task token")
        timeout = state.get("TimeoutSecondsPath") or state.get("TimeoutSeconds")
        return lines + ([f"timeout {timeout}"] if timeout else [])
    if kind == "Choice":
        variables = {rule.get("Variable") for rule in state.get("Choices", [])}
        return [f"Choice on {variables.pop()}" if len(variables) == 1 else "Choice"]
    if kind == "Fail":
        return [f"Fail {state.get('Error', '')}".strip()]
    return [kind]


def state_machine(asl: Json) -> str:
    """The ASL definition (nested Parallel branches and Map iterations too) as Mermaid."""
    lines = ["stateDiagram-v2"]
    kinds: dict[str, str] = {}  # every state's name -> its Type
    targets: set[str] = set()

    def walk(definition: Json, indent: str) -> None:
        def go(source: str, target: str, label: str = "") -> None:
            targets.add(target)
            lines.append(f"{indent}{source} --> {target}" + (f" : {label}" if label else ""))

        go("[*]", definition["StartAt"])
        for name, state in definition["States"].items():
            kinds[name] = kind = state["Type"]
            lines.append(f"{indent}{name} : {name}<br/>" + "<br/>".join(_describe(state)))
            if kind in ("Parallel", "Map"):
                nested = state.get("Branches") or [
                    state.get("ItemProcessor", state.get("Iterator"))
                ]
                lines.append(f"{indent}state {name} {{")
                for index, machine in enumerate(nested):
                    lines.extend([f"{indent}    --"] if index else [])
                    walk(machine, indent + "    ")
                lines.append(f"{indent}}}")
            for rule in state.get("Choices", []):
                go(name, rule["Next"], _rule(rule))
            if "Default" in state:
                go(name, state["Default"], "otherwise")
            if "Next" in state:
                go(name, state["Next"])
            if state.get("End") or kind in ("Succeed", "Fail"):
                go(name, "[*]")
            for catcher in state.get("Catch", []):
                go(name, catcher["Next"], "catch " + ", ".join(catcher["ErrorEquals"]))

    walk(asl, "    ")
    missing = targets - {"[*]", *kinds}
    if missing:
        raise ValueError(f"transitions go to {sorted(missing)}, which are not states")
    for kind, fill in {"Task": "#eef4fb", "Choice": "#fff6e0", "Fail": "#fdecea"}.items():
        names = ",".join(name for name, of in kinds.items() if of == kind)
        lines += [f"    classDef {kind} fill:{fill}", f"    class {names} {kind}"] if names else []
    return "\n".join(lines) + "\n"


# --- the choreography: flowchart ------------------------------------------------------------


def choreography(
    subscriptions: Sequence[Subscription], handlers: Mapping[Subscription, Callable[..., Any]]
) -> str:
    """The order events' path from the outbox to each subscription's queue and its handler."""
    relay = relay_recorded_events.__name__
    lines = [
        "flowchart LR",
        '    stream[("orders table<br/>stream")] --> relay("' + relay + '<br/>the outbox relay")',
        '    relay --> topic{{"SNS topic<br/>order events"}}',
    ]
    for subscription in subscriptions:
        service = subscription.service
        queue = "queue_" + service.replace("-", "_")
        policy = subscription.filter_policy()
        label = "<br/>".join(f"{key}: {', '.join(values)}" for key, values in policy.items())
        delay = "<br/>delayed until the restaurant deadline" * subscription.delayed_until_deadline
        lines.append(f'    topic -->|"{label}"| {queue}[["SQS queue<br/>{service}{delay}"]]')
        if subscription in handlers:
            name = handlers[subscription].__name__
            lines.append(f'    {queue} -->|"batches of {QUEUE_BATCH}"| handler_{name}("{name}")')
    return "\n".join(lines) + "\n"


def rendered(root: Path = ROOT) -> dict[str, str]:
    """Every diagram, by the name its markers use, from the sources as they are now."""
    return {
        "order_flow": state_machine(json.loads((root / ASL).read_text())),
        "choreography": choreography(SUBSCRIPTIONS, HANDLERS),
    }


# --- the documents --------------------------------------------------------------------------


def embed(text: str, diagrams: Mapping[str, str]) -> tuple[str, list[str]]:
    """``text`` with each marked block replaced by its diagram; the names of those that differed."""
    parts: list[str] = []
    differing: list[str] = []
    opened: re.Match[str] | None = None
    end = 0
    for marker in MARKER.finditer(text):
        closing, name = marker[1] == "/", marker[2]
        line = text.count("\n", 0, marker.start()) + 1
        if not closing:
            if opened:
                raise MarkerError(f"line {line}: diagram:{name} opens before {opened[2]} is closed")
            if name not in diagrams:
                raise MarkerError(
                    f"line {line}: no diagram is called {name!r} ({', '.join(diagrams)})"
                )
            opened = marker
            continue
        if opened is None or opened[2] != name:
            raise MarkerError(f"line {line}: /diagram:{name} closes no open diagram:{name}")
        block = f"\n```mermaid\n{diagrams[name]}```\n"
        if text[opened.end() : marker.start()] != block:
            differing.append(name)
        parts += [text[end : opened.end()], block]
        end, opened = marker.start(), None
    if opened:
        raise MarkerError(f"diagram:{opened[2]} is never closed")
    return "".join(parts) + text[end:], differing


def documents(root: Path = ROOT) -> list[Path]:
    """Where diagrams may be embedded: README.md and every Markdown file under docs/."""
    paths = [root / "README.md", *sorted((root / "docs").rglob("*.md"))]
    return [path for path in paths if path.is_file()]


def sync(root: Path, diagrams: Mapping[str, str], write: bool) -> list[str]:
    """``file: diagram`` for every embedded block that differs; rewritten if ``write``.

    Every file's markers are checked before any file is written.
    """
    found, rewritten = [], {}
    for path in documents(root):
        where, text = path.relative_to(root), path.read_text()
        try:
            rewritten[path], differing = embed(text, diagrams)
        except MarkerError as error:
            raise MarkerError(f"{where}: {error}") from None
        found += [f"{where}: {name}" for name in differing]
    if write:
        for path, text in rewritten.items():
            if text != path.read_text():
                path.write_text(text)
    return found


def main(argv: list[str] | None = None, root: Path = ROOT) -> int:
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__)
    parser.add_argument("--check", action="store_true", help="only check the embedded diagrams")
    args = parser.parse_args(argv)
    try:
        differing = sync(root, rendered(root), write=not args.check)
    except MarkerError as error:
        print(f"diagram markers: {error}", file=sys.stderr)
        return 1
    if args.check and differing:
        for where in differing:
            print(f"{where} is stale: run `{COMMAND}` and commit it", file=sys.stderr)
        return 1
    print("\n".join(f"rewrote {where}" for where in differing) or "the diagrams are up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
