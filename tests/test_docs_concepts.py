"""docs/concepts/repository.md draws the status transitions: the diagram holds every transition
of the code's table (batchline.status) and no other."""

from __future__ import annotations

import re
from pathlib import Path

from batchline.status import BatchStatus

PAGE = Path(__file__).resolve().parents[1] / "docs" / "concepts" / "repository.md"
EDGE = re.compile(r"^\s*(\[\*\]|[A-Z]+)\s*-->\s*(\[\*\]|[A-Z]+)\s*(?::.*)?$")


def _diagram() -> list[str]:
    text = PAGE.read_text(encoding="utf-8")
    blocks = re.findall(r"```mermaid\n(.*?)```", text, flags=re.S)
    assert len(blocks) == 1, "repository.md should hold one mermaid diagram"
    lines = blocks[0].splitlines()
    assert lines[0].strip() == "stateDiagram-v2"
    return lines[1:]


def _code_transitions() -> set[tuple[str, str]]:
    return {(a.value, b.value) for a in BatchStatus for b in BatchStatus if a.can_become(b)}


def test_diagram_is_the_transition_table() -> None:
    drawn: set[tuple[str, str]] = set()
    for line in _diagram():
        if not line.strip():
            continue
        edge = EDGE.match(line)
        assert edge, f"not a transition line: {line!r}"
        source, target = edge.groups()
        if "[*]" in (source, target):
            continue
        assert source in BatchStatus.__members__ and target in BatchStatus.__members__, line
        assert (source, target) not in drawn, f"drawn twice: {line.strip()}"
        drawn.add((source, target))
    code = _code_transitions()
    assert drawn - code == set(), f"drawn but not allowed by the code: {sorted(drawn - code)}"
    assert code - drawn == set(), f"allowed by the code but not drawn: {sorted(code - drawn)}"


def test_diagram_starts_and_ends_where_the_code_does() -> None:
    starts = {m.group(2) for line in _diagram() if (m := EDGE.match(line)) and m.group(1) == "[*]"}
    ends = {m.group(1) for line in _diagram() if (m := EDGE.match(line)) and m.group(2) == "[*]"}
    assert starts == {"STARTING"}  # every execution is recorded STARTING first
    finals = {s.value for s in BatchStatus if not any(s.can_become(t) for t in BatchStatus)}
    assert ends == finals == {"COMPLETED", "ABANDONED"}
