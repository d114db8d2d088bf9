"""A small layered graph drawing, top to bottom: rounded boxes, arrows with labels.

Pure Python and deterministic (same diagram in, same bytes out), so generated files can
be committed and compared. ``deploy/diagrams.py`` builds the diagrams; this module only
lays them out and writes them, as SVG and as Mermaid text.

The layout is the classic layered one, kept small:
1. cycles are broken by reversing the back edges a depth-first search finds;
2. each node's layer is its longest path from a source, so every edge points down;
3. layers are doubled and every edge gets a placeholder in each layer it crosses; the
   one just after its source carries its label, so labels get room of their own and
   never overlap each other or a box;
4. the order in each layer is improved by barycenter sweeps (fewest crossings kept);
5. x positions pull each box toward its neighbours, with no overlap (isotonic regression);
6. edges are polylines through their placeholders (a label stays on its edge), with the
   points they can do without dropped: a shortcut is taken only where it misses every box
   and every other label, so an edge never crosses a box.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from html import escape

# Advance widths (1/1000 em) of printable ASCII, space to tilde, in DejaVu Sans and its bold:
# the widest of the fonts the SVG asks for, so text measured with them fits in any of them.
_WIDTHS = (
    (318, 401, 460, 838, 636, 950, 780, 275, 390, 390, 500, 838, 318, 361, 318, 337, 636, 636)
    + (636, 636, 636, 636, 636, 636, 636, 636, 337, 337, 838, 838, 838, 531, 1000, 684, 686)
    + (698, 770, 632, 575, 775, 752, 295, 295, 656, 557, 863, 748, 787, 603, 787, 695, 635)
    + (611, 732, 684, 989, 685, 611, 685, 390, 337, 390, 838, 500, 500, 613, 635, 550, 635)
    + (615, 352, 635, 634, 278, 278, 579, 278, 974, 634, 612, 635, 635, 411, 521, 392, 634)
    + (592, 818, 592, 592, 525, 636, 337, 636, 838)
)
_BOLD_WIDTHS = (
    (348, 456, 521, 838, 696, 1002, 872, 306, 457, 457, 523, 838, 380, 415, 380, 365, 696)
    + (696, 696, 696, 696, 696, 696, 696, 696, 696, 400, 400, 838, 838, 838, 580, 1000, 774)
    + (762, 734, 830, 683, 683, 821, 837, 372, 372, 775, 637, 995, 837, 850, 733, 850, 770)
    + (720, 682, 812, 774, 1103, 771, 724, 725, 457, 365, 457, 838, 500, 500, 675, 716, 593)
    + (716, 678, 435, 716, 712, 343, 343, 665, 343, 1042, 712, 687, 716, 716, 493, 595, 478)
    + (712, 652, 924, 645, 652, 582, 712, 365, 712, 838)
)
_OTHER_WIDTHS = {"×": 838, "→": 838, "·": 318, "…": 1000, "—": 1000, "–": 500}
FONT_FAMILY = "Helvetica, Arial, 'DejaVu Sans', sans-serif"

# Line styles: font size, bold, colour, line height.
_LINE_STYLES: dict[str, tuple[float, bool, str, float]] = {
    "title": (18.0, True, "#1a1a1a", 24.0),
    "name": (13.0, True, "#1a1a1a", 17.0),
    "text": (12.0, False, "#1a1a1a", 15.0),
    "small": (11.0, False, "#555555", 14.0),
    "accent": (11.0, True, "#6a3fa8", 14.0),
    "warning": (11.0, True, "#b02a1f", 14.0),
}
LABEL_STYLE = "small"
# Node kinds: fill, stroke, and whether the box is a pill (terminal states).
_NODE_STYLES: dict[str, tuple[str, str, bool]] = {
    "terminal": ("#4d4d4d", "#333333", True),
    "join": ("#f0f0f0", "#8c8c8c", True),
    "task": ("#eef4fb", "#4a78b0", False),
    "callback": ("#f4effb", "#7a52b3", False),
    "choice": ("#fff6e0", "#c98a00", False),
    "succeed": ("#e8f6ec", "#2e8b57", False),
    "fail": ("#fdecea", "#c0392b", False),
    "plain": ("#f5f5f5", "#8c8c8c", False),
    "container": ("#eaf8f6", "#2a9d8f", False),
    "topic": ("#fff1e3", "#d9822b", False),
    "subscription": ("#fffaeb", "#c9a227", False),
    "queue": ("#eef4fb", "#4a78b0", False),
    "function": ("#edf8ef", "#2e8b57", False),
    "missing": ("#fdecea", "#c0392b", False),
}
_INSET_STYLE = ("#fdecea", "#c0392b")
# Edge kinds: colour, dashed.
_EDGE_STYLES: dict[str, tuple[str, bool]] = {
    "next": ("#444444", False),
    "branch": ("#a86f00", False),
    "catch": ("#c0392b", True),
    "flow": ("#555555", False),
}

PAD_X = 12.0
PAD_Y = 8.0
INSET_GAP = 6.0
NODE_GAP = 28.0
DUMMY_GAP = 12.0
LAYER_GAP = 14.0
EMPTY_LABEL_LAYER = 4.0
PORT_SPACING = 16.0
MARGIN = 20.0
MIN_TEXT_WIDTH = 480.0  # subtitle and notes wrap at the drawing's width, or this if wider
STUB = 6.0  # edges leave and enter boxes vertically for this long
SWEEPS = 24
PLACEMENT_PASSES = 16


@dataclass(frozen=True)
class Line:
    text: str
    style: str = "text"


@dataclass(frozen=True)
class Node:
    key: str
    lines: tuple[Line, ...]
    kind: str = "plain"
    # A box drawn inside this one, under its lines (a queue's dead-letter queue); Mermaid
    # draws it as a node of its own, joined by a dashed edge.
    inset: tuple[Line, ...] = ()
    tooltip: str = ""


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    label: tuple[str, ...] = ()
    kind: str = "next"


@dataclass(frozen=True)
class Diagram:
    title: str
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    subtitle: tuple[str, ...] = ()  # paragraphs, wrapped to the drawing's width
    notes: tuple[str, ...] = ()  # paragraphs under the drawing


def text_width(text: str, style: str = "text") -> float:
    size, bold, _, _ = _LINE_STYLES[style]
    table = _BOLD_WIDTHS if bold else _WIDTHS
    units = 0
    for char in text:
        code = ord(char)
        units += table[code - 32] if 32 <= code < 127 else _OTHER_WIDTHS.get(char, 1000)
    return units * size / 1000.0


def _lines_height(lines: Iterable[Line]) -> float:
    return sum(_LINE_STYLES[line.style][3] for line in lines)


def _lines_width(lines: Iterable[Line]) -> float:
    return max((text_width(line.text, line.style) for line in lines), default=0.0)


def _inset_size(node: Node) -> tuple[float, float]:
    if not node.inset:
        return 0.0, 0.0
    return _lines_width(node.inset) + 2 * PAD_X, _lines_height(node.inset) + 2 * INSET_GAP


def node_size(node: Node) -> tuple[float, float]:
    inset_width, inset_height = _inset_size(node)
    width = max(_lines_width(node.lines), inset_width) + 2 * PAD_X
    height = _lines_height(node.lines) + 2 * PAD_Y + (inset_height + PAD_Y if node.inset else 0)
    if _NODE_STYLES[node.kind][2]:
        width += height / 2  # a pill's round ends take room from the text
    return width, height


def _label_size(label: Sequence[str]) -> tuple[float, float]:
    if not label:
        return 0.0, 0.0
    lines = [Line(text, LABEL_STYLE) for text in label]
    return _lines_width(lines) + 8.0, _lines_height(lines) + 4.0


# --- layout ---------------------------------------------------------------------------------


@dataclass
class _Slot:
    """A box, or a placeholder an edge passes through (carrying its label, or nothing)."""

    key: str
    layer: int
    width: float
    height: float
    order_hint: tuple[int, int]
    node: Node | None = None
    label: tuple[str, ...] = ()
    x: float = 0.0
    up: list[str] = field(default_factory=list)
    down: list[str] = field(default_factory=list)


@dataclass
class _Route:
    edge: Edge
    slots: list[str]  # from the upper box to the lower one
    reversed: bool  # drawn upward: the edge goes from the lower box to the upper one


@dataclass
class _Layout:
    slots: dict[str, _Slot]
    layers: list[list[str]]
    routes: list[_Route]
    loops: list[Edge]
    layer_top: list[float]
    layer_height: list[float]


def _break_cycles(
    diagram: Diagram, outgoing: dict[str, list[int]]
) -> tuple[set[int], dict[str, int]]:
    """Back edges of a depth-first search from the nodes in order, and the visiting order."""
    back: set[int] = set()
    preorder: dict[str, int] = {}
    on_stack: set[str] = set()
    for root in (node.key for node in diagram.nodes):
        if root in preorder:
            continue
        preorder[root] = len(preorder)
        on_stack.add(root)
        stack = [(root, iter(outgoing[root]))]
        while stack:
            current, pending = stack[-1]
            for index in pending:
                target = diagram.edges[index].target
                if target == current:
                    continue
                if target in on_stack:
                    back.add(index)
                elif target not in preorder:
                    preorder[target] = len(preorder)
                    on_stack.add(target)
                    stack.append((target, iter(outgoing[target])))
                    break
            else:
                on_stack.discard(current)
                stack.pop()
    return back, preorder


def _longest_path_ranks(keys: Sequence[str], arcs: Sequence[tuple[str, str]]) -> dict[str, int]:
    successors: dict[str, list[str]] = {key: [] for key in keys}
    indegree = dict.fromkeys(keys, 0)
    for upper, lower in arcs:
        successors[upper].append(lower)
        indegree[lower] += 1
    rank = dict.fromkeys(keys, 0)
    ready = [key for key in keys if indegree[key] == 0]
    while ready:
        current = ready.pop(0)
        for lower in successors[current]:
            rank[lower] = max(rank[lower], rank[current] + 1)
            indegree[lower] -= 1
            if indegree[lower] == 0:
                ready.append(lower)
    return rank


def _crossings(layers: list[list[str]], slots: dict[str, _Slot]) -> int:
    total = 0
    for layer, next_layer in zip(layers, layers[1:], strict=False):
        position = {key: index for index, key in enumerate(layer)}
        below = {key: index for index, key in enumerate(next_layer)}
        segments = [(position[key], below[lower]) for key in layer for lower in slots[key].down]
        for first, (a_up, a_down) in enumerate(segments):
            for b_up, b_down in segments[first + 1 :]:
                if (a_up - b_up) * (a_down - b_down) < 0:
                    total += 1
    return total


def _order_layers(layers: list[list[str]], slots: dict[str, _Slot]) -> list[list[str]]:
    best = [list(layer) for layer in layers]
    best_crossings = _crossings(best, slots)
    current = [list(layer) for layer in layers]
    for sweep in range(SWEEPS):
        downward = sweep % 2 == 0
        indices = range(1, len(current)) if downward else range(len(current) - 2, -1, -1)
        for index in indices:
            neighbour_layer = current[index - 1] if downward else current[index + 1]
            position = {key: i for i, key in enumerate(neighbour_layer)}
            ranked = []
            for own_index, key in enumerate(current[index]):
                neighbours = slots[key].up if downward else slots[key].down
                barycenter = (
                    sum(position[n] for n in neighbours) / len(neighbours)
                    if neighbours
                    else float(own_index)
                )
                ranked.append((barycenter, own_index, key))
            current[index] = [key for _, _, key in sorted(ranked)]
        crossings = _crossings(current, slots)
        if crossings < best_crossings:
            best, best_crossings = [list(layer) for layer in current], crossings
    return best


def _gap(left: _Slot, right: _Slot) -> float:
    real = (left.node is not None) + (right.node is not None)
    gap = NODE_GAP if real == 2 else DUMMY_GAP
    return (left.width + right.width) / 2 + gap


def _place_in_order(targets: list[float], gaps: list[float]) -> list[float]:
    """The positions closest to ``targets`` (least squares) that keep at least ``gaps`` apart.

    With offsets o_i (the sum of the gaps before i), y_i = x_i - o_i must not decrease:
    isotonic regression, solved by pooling adjacent violators.
    """
    offsets = [0.0]
    for gap in gaps:
        offsets.append(offsets[-1] + gap)
    blocks: list[list[float]] = []  # [sum of targets, count]
    for target, offset in zip(targets, offsets, strict=True):
        blocks.append([target - offset, 1.0])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] > blocks[-1][0] / blocks[-1][1]:
            total, count = blocks.pop()
            blocks[-1][0] += total
            blocks[-1][1] += count
    values: list[float] = []
    for total, count in blocks:
        values.extend([total / count] * int(count))
    return [value + offset for value, offset in zip(values, offsets, strict=True)]


def _assign_x(layers: list[list[str]], slots: dict[str, _Slot]) -> None:
    for layer in layers:
        x = 0.0
        for index, key in enumerate(layer):
            if index:
                x += _gap(slots[layer[index - 1]], slots[key])
            slots[key].x = x

    def place(layer: list[str], up: bool, down: bool) -> None:
        targets = []
        for key in layer:
            slot = slots[key]
            neighbours = (slot.up if up else []) + (slot.down if down else [])
            if neighbours:
                targets.append(sum(slots[n].x for n in neighbours) / len(neighbours))
            else:
                targets.append(slot.x)
        gaps = [_gap(slots[a], slots[b]) for a, b in zip(layer, layer[1:], strict=False)]
        for key, x in zip(layer, _place_in_order(targets, gaps), strict=True):
            slots[key].x = x

    for _ in range(PLACEMENT_PASSES):
        for layer in layers[1:]:
            place(layer, up=True, down=False)
        for layer in reversed(layers[:-1]):
            place(layer, up=False, down=True)
    for _ in range(PLACEMENT_PASSES // 2):
        for layer in layers:
            place(layer, up=True, down=True)


def _straighten(layers: list[list[str]], slots: dict[str, _Slot], chains: list[list[str]]) -> None:
    """Puts each edge's placeholders in one vertical line, where its layers leave room."""
    where = {key: (index, layer) for layer in layers for index, key in enumerate(layer)}
    for chain in sorted(chains, key=lambda c: (-len(c), c[0])):
        low, high = float("-inf"), float("inf")
        for key in chain:
            index, layer = where[key]
            if index > 0:
                left = slots[layer[index - 1]]
                low = max(low, left.x + _gap(left, slots[key]))
            if index + 1 < len(layer):
                right = slots[layer[index + 1]]
                high = min(high, right.x - _gap(slots[key], right))
        if low <= high:
            mean = sum(slots[key].x for key in chain) / len(chain)
            for key in chain:
                slots[key].x = min(max(mean, low), high)


def layout(diagram: Diagram) -> _Layout:
    keys = [node.key for node in diagram.nodes]
    if len(set(keys)) != len(keys):
        raise ValueError(f"{diagram.title}: two nodes share a key")
    outgoing: dict[str, list[int]] = {key: [] for key in keys}
    for index, edge in enumerate(diagram.edges):
        if edge.source not in outgoing or edge.target not in outgoing:
            raise ValueError(f"{diagram.title}: edge {edge.source} -> {edge.target}: no such node")
        outgoing[edge.source].append(index)
    back, preorder = _break_cycles(diagram, outgoing)
    loops = [edge for edge in diagram.edges if edge.source == edge.target]
    arcs: list[tuple[int, str, str]] = []
    for index, edge in enumerate(diagram.edges):
        if edge.source == edge.target:
            continue
        upper, lower = (edge.target, edge.source) if index in back else (edge.source, edge.target)
        arcs.append((index, upper, lower))
    rank = _longest_path_ranks(keys, [(upper, lower) for _, upper, lower in arcs])

    slots: dict[str, _Slot] = {}
    for node in diagram.nodes:
        width, height = node_size(node)
        for loop in loops:
            if loop.source == node.key:
                width += 2 * (24.0 + _label_size(loop.label)[0])
        slots[node.key] = _Slot(
            node.key, 2 * rank[node.key], width, height, (preorder[node.key], -1), node
        )
    routes: list[_Route] = []
    for index, upper, lower in arcs:
        edge = diagram.edges[index]
        chain = [upper]
        first, last = 2 * rank[upper] + 1, 2 * rank[lower] - 1
        label_layer = last if index in back else first
        for layer_index in range(first, last + 1):
            label = edge.label if layer_index == label_layer else ()
            width, height = _label_size(label)
            key = f"edge{index}@{layer_index}"
            hint = (preorder[upper], index)
            slots[key] = _Slot(key, layer_index, width, height, hint, label=label)
            chain.append(key)
        chain.append(lower)
        for above, below in zip(chain, chain[1:], strict=False):
            slots[above].down.append(below)
            slots[below].up.append(above)
        routes.append(_Route(edge, chain, index in back))

    depth = max(slot.layer for slot in slots.values()) + 1
    layers: list[list[str]] = [[] for _ in range(depth)]
    for key in sorted(slots, key=lambda k: slots[k].order_hint):
        layers[slots[key].layer].append(key)
    layers = _order_layers(layers, slots)
    _assign_x(layers, slots)
    _straighten(layers, slots, [route.slots[1:-1] for route in routes if len(route.slots) > 3])

    layer_height = []
    for index, layer in enumerate(layers):
        tallest = max((slots[key].height for key in layer), default=0.0)
        layer_height.append(max(tallest, EMPTY_LABEL_LAYER if index % 2 else 0.0))
    layer_top = []
    y = 0.0
    for height in layer_height:
        layer_top.append(y)
        y += height + LAYER_GAP
    return _Layout(slots, layers, routes, loops, layer_top, layer_height)


# --- SVG ------------------------------------------------------------------------------------


def _num(value: float) -> str:
    text = f"{value:.1f}"
    if text in ("-0.0", "0.0"):
        return "0"
    return text[:-2] if text.endswith(".0") else text


def _text(x: float, baseline: float, line: Line, anchor: str = "middle", colour: str = "") -> str:
    size, bold, default_colour, _ = _LINE_STYLES[line.style]
    colour = colour or default_colour
    weight = ' font-weight="bold"' if bold else ""
    return (
        f'<text x="{_num(x)}" y="{_num(baseline)}" font-size="{_num(size)}"{weight} '
        f'fill="{colour}" text-anchor="{anchor}">{escape(line.text, quote=False)}</text>'
    )


def _text_block(center_x: float, top: float, lines: Sequence[Line], colour: str = "") -> list[str]:
    out = []
    y = top
    for line in lines:
        size, _, _, height = _LINE_STYLES[line.style]
        baseline = y + (height + size) / 2 - 1.5
        out.append(_text(center_x, baseline, line, colour=colour))
        y += height
    return out


def _ports(count: int, width: float) -> list[float]:
    if count <= 1:
        return [0.0] * count
    spacing = min(PORT_SPACING, width * 0.7 / (count - 1))
    return [(index - (count - 1) / 2) * spacing for index in range(count)]


Point = tuple[float, float]
Rect = tuple[float, float, float, float]  # left, top, right, bottom


def _hits(a: Point, b: Point, rect: Rect, pad: float = 3.0) -> bool:
    """Whether the segment a-b passes through ``rect`` grown by ``pad`` (Liang-Barsky)."""
    (x1, y1), (x2, y2) = a, b
    left, top, right, bottom = rect[0] - pad, rect[1] - pad, rect[2] + pad, rect[3] + pad
    dx, dy = x2 - x1, y2 - y1
    enter, leave = 0.0, 1.0
    for p, q in ((-dx, x1 - left), (dx, right - x1), (-dy, y1 - top), (dy, bottom - y1)):
        if p == 0:
            if q < 0:
                return False
            continue
        t = q / p
        if p < 0:
            enter = max(enter, t)
        else:
            leave = min(leave, t)
        if enter > leave:
            return False
    return True


def _pull(points: list[Point], fixed: set[int], obstacles: list[Rect]) -> list[Point]:
    """Drops the points an edge can do without: each kept segment misses every obstacle."""
    kept = [points[0]]
    current, last = 0, len(points) - 1
    while current < last:
        reach = next(k for k in range(current + 1, last + 1) if k in fixed or k == last)
        while reach > current + 1 and any(
            _hits(points[current], points[reach], rect) for rect in obstacles
        ):
            reach -= 1
        kept.append(points[reach])
        current = reach
    return kept


def _wrap_px(text: str, style: str, width: float) -> list[str]:
    lines: list[str] = []
    for word in text.split():
        if lines and text_width(f"{lines[-1]} {word}", style) <= width:
            lines[-1] += f" {word}"
        else:
            lines.append(word)
    return lines


def to_svg(diagram: Diagram, comment: str = "") -> str:
    laid = layout(diagram)
    slots = laid.slots
    left = min(slot.x - slot.width / 2 for slot in slots.values())
    right = max(slot.x + slot.width / 2 for slot in slots.values())
    text_room = max(right - left, text_width(diagram.title, "title"), MIN_TEXT_WIDTH)
    header = [Line(diagram.title, "title")] + [
        Line(text, "small")
        for paragraph in diagram.subtitle
        for text in _wrap_px(paragraph, "small", text_room)
    ]
    notes = [
        Line(text, "small")
        for paragraph in diagram.notes
        for text in _wrap_px(paragraph, "small", text_room)
    ]
    width = text_room + 2 * MARGIN
    shift = MARGIN + (text_room - (right - left)) / 2 - left
    top = MARGIN + _lines_height(header) + 16
    notes_top = top + laid.layer_top[-1] + laid.layer_height[-1] + 20
    height = notes_top + _lines_height(notes) + MARGIN

    def band(layer: int) -> tuple[float, float]:
        start = top + laid.layer_top[layer]
        return start, start + laid.layer_height[layer]

    def rect(key: str, width: float | None = None, height: float | None = None) -> Rect:
        slot = slots[key]
        width = slot.width if width is None else width
        height = slot.height if height is None else height
        band_top, band_bottom = band(slot.layer)
        middle = (band_top + band_bottom) / 2
        x = slot.x + shift
        return x - width / 2, middle - height / 2, x + width / 2, middle + height / 2

    node_rects = {node.key: rect(node.key, *node_size(node)) for node in diagram.nodes}
    label_rects = {
        key: rect(key, *_label_size(slot.label)) for key, slot in slots.items() if slot.label
    }

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_num(width)}" '
        f'height="{_num(height)}" viewBox="0 0 {_num(width)} {_num(height)}" '
        f'font-family="{FONT_FAMILY}">',
    ]
    if comment:
        out.append(f"<!-- {escape(comment, quote=False)} -->")
    out.append(f"<title>{escape(diagram.title, quote=False)}</title>")
    out.append("<defs>")
    for kind, (colour, _) in sorted(_EDGE_STYLES.items()):
        out.append(
            f'<marker id="arrow-{kind}" viewBox="0 0 10 10" refX="9" refY="5" '
            f'markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
            f'<path d="M0,0 L10,5 L0,10 z" fill="{colour}"/></marker>'
        )
    out.append("</defs>")
    out.append(f'<rect width="{_num(width)}" height="{_num(height)}" fill="#ffffff"/>')
    y = MARGIN
    for line in header:
        size, _, _, line_height = _LINE_STYLES[line.style]
        out.append(_text(MARGIN, y + size, line, "start"))
        y += line_height

    # Ports: where each edge leaves the bottom of a box or enters its top, in x order.
    bottom_port: dict[tuple[str, str], float] = {}
    top_port: dict[tuple[str, str], float] = {}
    for key, slot in slots.items():
        if slot.node is None:
            continue
        inner_width = node_size(slot.node)[0] - 2 * PAD_X
        for ports, neighbours in ((bottom_port, slot.down), (top_port, slot.up)):
            ordered = sorted(enumerate(neighbours), key=lambda item: (slots[item[1]].x, item[0]))
            offsets = _ports(len(ordered), inner_width)
            for (_, neighbour), offset in zip(ordered, offsets, strict=True):
                ports[(key, neighbour)] = slot.x + shift + offset

    out.append('<g fill="none" stroke-width="1.4" stroke-linejoin="round">')
    labels: list[str] = []
    for route in laid.routes:
        colour, dashed = _EDGE_STYLES[route.edge.kind]
        chain = route.slots
        upper_bottom = node_rects[chain[0]][3]
        lower_top = node_rects[chain[-1]][1]
        start_x = bottom_port[(chain[0], chain[1])]
        end_x = top_port[(chain[-1], chain[-2])]
        points: list[Point] = [(start_x, upper_bottom), (start_x, upper_bottom + STUB)]
        fixed = {1}
        own_label = ""
        for key in chain[1:-1]:
            slot = slots[key]
            band_top, band_bottom = band(slot.layer)
            if slot.label:
                own_label = key
                left_x, label_top, right_x, label_bottom = label_rects[key]
                fixed |= {len(points), len(points) + 1}
                points += [(slot.x + shift, label_top), (slot.x + shift, label_bottom)]
                labels.append(
                    f'<rect x="{_num(left_x)}" y="{_num(label_top)}" '
                    f'width="{_num(right_x - left_x)}" height="{_num(label_bottom - label_top)}" '
                    f'rx="3" fill="#ffffff" fill-opacity="0.92" stroke="{colour}" '
                    f'stroke-width="0.6"/>'
                )
                lines = [Line(text, LABEL_STYLE) for text in slot.label]
                labels += _text_block(slot.x + shift, label_top + 2, lines, colour)
            else:
                points += [(slot.x + shift, band_top), (slot.x + shift, band_bottom)]
        fixed.add(len(points))
        points += [(end_x, lower_top - STUB), (end_x, lower_top)]
        obstacles = [r for key, r in node_rects.items() if key not in (chain[0], chain[-1])]
        obstacles += [r for key, r in label_rects.items() if key != own_label]
        points = _pull(points, fixed, obstacles)
        if route.reversed:
            points.reverse()
        path = " ".join(f"{_num(x)},{_num(y)}" for x, y in points)
        dash = ' stroke-dasharray="5 3"' if dashed else ""
        out.append(
            f'<polyline points="{path}" stroke="{colour}"{dash} '
            f'marker-end="url(#arrow-{route.edge.kind})"/>'
        )
    for loop in laid.loops:
        colour, dashed = _EDGE_STYLES[loop.kind]
        _, box_top, box_right, box_bottom = node_rects[loop.source]
        middle = (box_top + box_bottom) / 2
        dash = ' stroke-dasharray="5 3"' if dashed else ""
        out.append(
            f'<path d="M{_num(box_right)},{_num(middle - 6)} h18 v12 h-18" stroke="{colour}"'
            f'{dash} marker-end="url(#arrow-{loop.kind})"/>'
        )
        lines = [Line(text, LABEL_STYLE) for text in loop.label]
        label_x = box_right + 24 + _label_size(loop.label)[0] / 2
        labels += _text_block(label_x, middle - _lines_height(lines) / 2, lines, colour)
    out.append("</g>")

    for node in diagram.nodes:
        fill, stroke, pill = _NODE_STYLES[node.kind]
        x, y, x_end, y_end = node_rects[node.key]
        w, h = x_end - x, y_end - y
        out.append("<g>")
        if node.tooltip:
            out.append(f"<title>{escape(node.tooltip, quote=False)}</title>")
        out.append(
            f'<rect x="{_num(x)}" y="{_num(y)}" width="{_num(w)}" height="{_num(h)}" '
            f'rx="{_num(h / 2 if pill else 8.0)}" fill="{fill}" stroke="{stroke}" '
            f'stroke-width="1.4"/>'
        )
        colour = "#ffffff" if node.kind == "terminal" else ""
        out += _text_block(x + w / 2, y + PAD_Y, node.lines, colour)
        if node.inset:
            inset_w, inset_h = _inset_size(node)
            inset_x = x + (w - inset_w) / 2
            inset_y = y + PAD_Y + _lines_height(node.lines) + PAD_Y
            inset_fill, inset_stroke = _INSET_STYLE
            out.append(
                f'<rect x="{_num(inset_x)}" y="{_num(inset_y)}" width="{_num(inset_w)}" '
                f'height="{_num(inset_h)}" rx="6" fill="{inset_fill}" stroke="{inset_stroke}" '
                f'stroke-width="1"/>'
            )
            out += _text_block(x + w / 2, inset_y + INSET_GAP, node.inset)
        out.append("</g>")
    out += labels

    y = notes_top
    for line in notes:
        size, _, _, line_height = _LINE_STYLES[line.style]
        out.append(_text(MARGIN, y + size, line, "start"))
        y += line_height
    out.append("</svg>")
    return "\n".join(out) + "\n"


# --- Mermaid --------------------------------------------------------------------------------

_MERMAID_ESCAPES = {'"': "#quot;", "<": "#lt;", ">": "#gt;", "&": "#amp;", "#": "#35;"}
_MERMAID_SHAPES = {"terminal": ('(["', '"])'), "join": ('(["', '"])'), "choice": ('{{"', '"}}')}
# Words a flowchart reads as its own, in any case ("end" closes a subgraph).
_MERMAID_KEYWORDS = {
    "end",
    "graph",
    "flowchart",
    "subgraph",
    "class",
    "classdef",
    "style",
    "linkstyle",
    "click",
    "call",
    "href",
    "default",
    "direction",
}


def _mermaid_text(text: str) -> str:
    return "".join(_MERMAID_ESCAPES.get(char, char) for char in text)


def _mermaid_label(lines: Iterable[Line]) -> str:
    parts = []
    for line in lines:
        text = _mermaid_text(line.text)
        parts.append(f"<b>{text}</b>" if line.style == "name" else text)
    return "<br/>".join(parts)


def _mermaid_id(key: str, taken: set[str]) -> str:
    base = "".join(char if char.isalnum() else "_" for char in key).strip("_") or "node"
    if base.lower() in _MERMAID_KEYWORDS:
        base += "_"
    candidate, suffix = base, 2
    while candidate in taken:
        candidate, suffix = f"{base}_{suffix}", suffix + 1
    taken.add(candidate)
    return candidate


def to_mermaid(diagram: Diagram, comment: str = "") -> str:
    """The diagram as a Mermaid flowchart (GitHub renders it); notes become comments."""
    taken: set[str] = set()
    ids = {node.key: _mermaid_id(node.key, taken) for node in diagram.nodes}
    # Front matter must come first; the title is quoted (a JSON string is a YAML string).
    out = ["---", f"title: {json.dumps(diagram.title, ensure_ascii=False)}", "---"]
    out.append("flowchart TD")
    out += [f"    %% {text}" for text in (comment, *diagram.subtitle, *diagram.notes) if text]
    inset_ids: dict[str, str] = {}
    for node in diagram.nodes:
        opening, closing = _MERMAID_SHAPES.get(node.kind, ('("', '")'))
        out.append(f"    {ids[node.key]}{opening}{_mermaid_label(node.lines)}{closing}")
        if node.inset:
            inset_ids[node.key] = _mermaid_id(f"{node.key} inset", taken)
            out.append(f'    {inset_ids[node.key]}("{_mermaid_label(node.inset)}")')
    for edge in diagram.edges:
        arrow = "-.->" if _EDGE_STYLES[edge.kind][1] else "-->"
        label = f'|"{_mermaid_text(" ".join(edge.label))}"|' if edge.label else ""
        out.append(f"    {ids[edge.source]} {arrow}{label} {ids[edge.target]}")
    for key, inset_id in inset_ids.items():
        out.append(f"    {ids[key]} -.- {inset_id}")
    by_kind: dict[str, list[str]] = {}
    for node in diagram.nodes:
        by_kind.setdefault(node.kind, []).append(ids[node.key])
    if inset_ids:
        by_kind["inset"] = list(inset_ids.values())
    styles = {kind: (fill, stroke) for kind, (fill, stroke, _) in _NODE_STYLES.items()}
    styles["inset"] = _INSET_STYLE
    for kind, members in sorted(by_kind.items()):
        fill, stroke = styles[kind]
        colour = ",color:#ffffff" if kind == "terminal" else ""
        out.append(f"    classDef {kind} fill:{fill},stroke:{stroke}{colour}")
        out.append(f"    class {','.join(members)} {kind}")
    return "\n".join(out) + "\n"
