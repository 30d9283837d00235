"""A job's flow laid out for an inline SVG (``templates/_flow.html`` draws it): steps, splits,
deciders, the transitions with their patterns, and the end, fail and stop they lead to; for an
execution, the path it took, what its nodes routed on, and where a restart will begin.

The layout is computed here, on the server, so the page needs no script: each node sits on the
row of its longest path from the start (a flow has no loops: ``FlowSpec`` refuses them), the
ends on a row of their own below, nodes of a row in their declared order. Labels are text for
the template to escape; a long one is shortened and whole in its ``<title>``. Colours are CSS
classes (the CSP allows no inline style).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from batchline.flow import Split
from batchline.flowgraph import Decider
from batchline.flowrun import AT_KEY, PATH_KEY

if TYPE_CHECKING:
    from batchline.job import Job

BOX_W, BOX_H, COL, ROW, PAD, LANE = 168, 40, 196, 84, 16, 120
LABEL_CHARS = 22
END, FAIL, STOP = "(end)", "(fail)", "(stop)"
_TERMINALS = {"end": END, "fail": FAIL, "stop": STOP}
RESTARTABLE = ("FAILED", "STOPPED")


def short(text: str, limit: int = LABEL_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass
class Box:
    name: str
    kind: str  # step, split, decider, end, fail, stop
    x: int = 0
    y: int = 0
    w: int = BOX_W
    h: int = BOX_H
    ran: str = ""  # the status this execution's step ended with (empty: it did not run)
    taken: bool = False
    restart: bool = False
    detail: str = ""  # a split's flows

    @property
    def label(self) -> str:
        return short(self.name)

    @property
    def title(self) -> str:
        what = {"end": "end of the job", "fail": "the job fails", "stop": "the job stops"}
        text = what.get(self.kind, f"{self.kind} {self.name}")
        if self.detail:
            text += f" ({self.detail})"
        if self.ran:
            text += f": {self.ran}"
        if self.restart:
            text += " · a restart begins here"
        return text

    @property
    def cx(self) -> int:
        return self.x + self.w // 2


@dataclass
class Arrow:
    source: str
    target: str
    patterns: list[str] = field(default_factory=list)
    kind: str = "to"
    taken: bool = False
    # From the source's bottom to the target's top, through a lane of its own on each row it
    # crosses (so a long edge never runs through a box).
    points: list[tuple[int, int]] = field(default_factory=list)

    @property
    def label(self) -> str:
        return short(", ".join(self.patterns), 18)

    @property
    def title(self) -> str:
        on = ", ".join(repr(p) for p in self.patterns) or "when it completes"
        return f"{self.source} → {self.target} on {on}"

    @property
    def polyline(self) -> str:
        return " ".join(f"{x},{y}" for x, y in self.points)

    @property
    def lx(self) -> int:
        """A long edge's label sits in its lane, beside the line; a short one's halfway."""
        (x1, _), (x2, _) = self.points[0], self.points[1]
        return x2 + 4 if len(self.points) > 2 else (x1 + x2) // 2 + 4

    @property
    def ly(self) -> int:
        (_, y1), (_, y2) = self.points[0], self.points[1]
        return y2 + 14 if len(self.points) > 2 else (y1 + y2) // 2 + 4


@dataclass
class Decision:
    node: str
    kind: str  # step or decider
    code: str
    led_to: str


@dataclass
class Diagram:
    width: int
    height: int
    boxes: list[Box]
    arrows: list[Arrow]
    decisions: list[Decision] = field(default_factory=list)
    restart_at: str | None = None


def _graph(job: Job) -> tuple[dict[str, Box], dict[tuple[str, str], Arrow]]:
    boxes: dict[str, Box] = {}
    arrows: dict[tuple[str, str], Arrow] = {}

    def arrow(source: str, target: str, pattern: str | None, kind: str) -> None:
        found = arrows.setdefault((source, target), Arrow(source, target, kind=kind))
        if pattern:
            found.patterns.append(pattern)

    def terminal(kind: str) -> str:
        name = _TERMINALS[kind]
        boxes.setdefault(name, Box(name, kind, w=96))
        return name

    flow = job.flow
    nodes: list[Any] = list(flow.nodes.values()) if flow is not None else list(job.steps)
    for node in nodes:
        if isinstance(node, Decider):
            boxes[node.name] = Box(node.name, "decider")
        elif isinstance(node, Split):
            flows = "; ".join(
                f"{f.name}: {' → '.join(s.name for s in f.steps)}" for f in node.flows
            )
            boxes[node.name] = Box(node.name, "split", detail=flows)
        else:
            boxes[node.name] = Box(node.name, "step")
    if flow is None:
        names = [n.name for n in nodes]
        for a, b in itertools.pairwise(names):
            arrow(a, b, None, "to")
        arrow(names[-1], terminal("end"), None, "end")
        return boxes, arrows
    for name in flow.nodes:
        transitions = flow.transitions.get(name)
        if not transitions:
            following = flow.successors.get(name)
            arrow(name, following or terminal("end"), None, "to" if following else "end")
            continue
        for t in transitions:
            if t.kind == "to" and t.target is not None:
                arrow(name, t.target, t.pattern, "to")
            else:
                label = t.pattern if t.kind != "stop" else f"{t.pattern} (restart at {t.target})"
                arrow(name, terminal(t.kind), label, t.kind)
    return boxes, arrows


def _layout(boxes: dict[str, Box], arrows: dict[tuple[str, str], Arrow]) -> tuple[int, int]:
    order = list(boxes)
    depth = dict.fromkeys(order, 0)
    # Longest path by relaxation: the graph is acyclic, so |nodes| rounds settle it.
    for _ in range(len(order)):
        moved = False
        for (a, b), _arrow in arrows.items():
            if boxes[b].kind in _TERMINALS:
                continue
            if depth[b] < depth[a] + 1:
                depth[b] = depth[a] + 1
                moved = True
        if not moved:
            break
    last = max((depth[n] for n in order if boxes[n].kind not in _TERMINALS), default=0)
    for n in order:
        if boxes[n].kind in _TERMINALS:
            depth[n] = last + 1
    # A row holds its nodes in declared order, then one lane per edge crossing it.
    rows: dict[int, list[str | tuple[str, str]]] = {}
    for n in order:
        rows.setdefault(depth[n], []).append(n)
    for a, b in arrows:
        for row in range(depth[a] + 1, depth[b]):
            rows[row].append((a, b))

    def width_of(slot: str | tuple[str, str]) -> int:
        return COL if isinstance(slot, str) else LANE

    width = max(sum(width_of(slot) for slot in r) for r in rows.values()) + 2 * PAD
    lanes: dict[tuple[str, str], list[tuple[int, int]]] = {}
    placed: dict[str, int] = {}
    for row in sorted(rows):
        slots = rows[row]
        if row == max(rows):  # the ends: each under what leads to it, to cross less
            slots.sort(key=lambda slot: _barycenter(str(slot), arrows, lanes, placed))
        x = (width - sum(width_of(slot) for slot in slots)) // 2
        y = PAD + row * ROW
        for slot in slots:
            if isinstance(slot, str):
                box = boxes[slot]
                box.x, box.y = x + (COL - box.w) // 2, y
                placed[slot] = box.cx
            else:
                middle = x + LANE // 2
                lanes.setdefault(slot, []).extend([(middle, y), (middle, y + BOX_H)])
            x += width_of(slot)
    for key, found in arrows.items():
        source, target = boxes[key[0]], boxes[key[1]]
        found.points = [
            (source.cx, source.y + source.h),
            *lanes.get(key, []),
            (target.cx, target.y),
        ]
    return width, PAD * 2 + (max(rows) + 1) * ROW - (ROW - BOX_H)


def _barycenter(
    name: str,
    arrows: dict[tuple[str, str], Arrow],
    lanes: dict[tuple[str, str], list[tuple[int, int]]],
    placed: dict[str, int],
) -> float:
    """The mean x from which a node's incoming edges arrive (their last lane, or source)."""
    xs = [
        lanes[key][-1][0] if key in lanes else placed.get(key[0], 0)
        for key in arrows
        if key[1] == name
    ]
    return sum(xs) / len(xs) if xs else 0.0


def job_diagram(job: Job) -> Diagram:
    boxes, arrows = _graph(job)
    width, height = _layout(boxes, arrows)
    return Diagram(width, height, list(boxes.values()), list(arrows.values()))


def execution_diagram(
    job: Job, status: str, context: dict[str, Any], execution_id: int, steps: dict[str, str]
) -> Diagram:
    """The job's flow with this execution's path: ``steps`` is each step's status in it."""
    diagram = job_diagram(job)
    boxes = {b.name: b for b in diagram.boxes}
    arrows = {(a.source, a.target): a for a in diagram.arrows}
    for name, step_status in steps.items():
        if name in boxes:
            boxes[name].ran = step_status
            boxes[name].taken = True
    path = context.get(PATH_KEY)
    if job.flow is not None and isinstance(path, dict) and path.get("execution") == execution_id:
        for node, code, kind, target in path.get("steps", []):
            led_to = str(target) if kind == "to" else _TERMINALS.get(str(kind), str(kind))
            if node in boxes:
                boxes[node].taken = True
            end = target if kind == "to" else _TERMINALS.get(str(kind))
            if end is not None and (node, end) in arrows:
                arrows[node, end].taken = True
                boxes[end].taken = True
            described = led_to if kind != "stop" else f"stop (a restart begins at {target})"
            diagram.decisions.append(
                Decision(
                    str(node), boxes[node].kind if node in boxes else "step", str(code), described
                )
            )
    elif job.flow is None:
        names = [s.name for s in job.steps]
        for a, b in itertools.pairwise(names):
            if steps.get(a) == "COMPLETED" and b in steps:
                arrows[a, b].taken = True
        if status == "COMPLETED" and names and (names[-1], END) in arrows:
            arrows[names[-1], END].taken = True
            boxes[END].taken = True
    if status in RESTARTABLE:
        diagram.restart_at = _restart_at(job, context, steps)
        if diagram.restart_at in boxes:
            boxes[diagram.restart_at].restart = True
    return diagram


def _restart_at(job: Job, context: dict[str, Any], steps: dict[str, str]) -> str | None:
    """Where a restart of this execution begins: the flow's recorded node, or a plain job's
    first step that did not complete."""
    if job.flow is not None:
        at = context.get(AT_KEY)
        return str(at) if at else job.flow.start
    return next((s.name for s in job.steps if steps.get(s.name) != "COMPLETED"), None)
