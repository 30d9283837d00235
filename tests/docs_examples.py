"""The documentation's code blocks, read as a reader would paste them (tests/test_docs_examples.py
runs them).

Every fenced block of a runnable language (``python``, ``bash``, ``sh``, ``console``) runs, in
page order, in a temporary folder of the page's own, unless an HTML comment on the line before
says otherwise. The comments never show on the site or on GitHub:

``<!-- file: jobs.py -->``
    the block is written to that path in the page's folder (any language), not run.
``<!-- returns: 1 -->``
    the block (a shell block) is expected to end with that exit code.
``<!-- background: http://127.0.0.1:8765/login -->``
    the shell block is started and left running until the page ends; the runner waits until
    the URL answers (any HTTP status) before it goes on.
``<!-- norun: the reason -->``
    the block is not run (a unit file for systemd, a fragment); the reason is required.
``<!-- needs: postgresql mariadb redis rabbitmq -->`` (anywhere on the page)
    the servers the page talks to; without them its test skips with the reason (fails on CI).
``<!-- fresh: postgresql docs_ops -->`` (anywhere on the page)
    before the page runs, that database is dropped and created empty on that server, so the
    page's repository and tables start as a reader's would (implies ``needs``).

Blocks of other languages (``text``, ``yaml``, ``ini``, ``sql``, ...) are shown, not run, unless a
``file:`` comment writes them. ``console`` blocks hold commands prefixed by ``$ ``; the lines
without the prefix are the output they show and are not run.

A ``python`` block runs as a script of its own (``python block.py``) with the page's folder as
its working directory, so each is pasteable alone; the files earlier blocks wrote are there.
A shell block runs with ``bash -eo pipefail`` and the virtual environment's ``bin`` first on
PATH, so ``batchline`` and ``python`` are the ones under test.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

RUNNABLE = {"python", "py", "bash", "sh", "shell", "console"}
SHELL = {"bash", "sh", "shell", "console"}
DIRECTIVE = re.compile(r"<!--\s*(file|returns|background|norun|needs|fresh):\s*(.*?)\s*-->")
FENCE = re.compile(r"^(?P<indent> *)(?P<fence>```+|~~~+)\s*(?P<info>[^\n`]*)$")


@dataclass
class Block:
    page: Path
    line: int  # 1-based line of the opening fence
    language: str
    code: str
    file: str | None = None
    returns: int = 0
    background: str | None = None
    norun: str | None = None

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def runs(self) -> bool:
        return self.norun is None and self.file is None and self.language in RUNNABLE


@dataclass
class Page:
    path: Path
    blocks: list[Block] = field(default_factory=list)
    needs: list[str] = field(default_factory=list)
    fresh: list[tuple[str, str]] = field(default_factory=list)  # (server, database)


def _language(info: str) -> str:
    info = info.strip().lstrip("{").strip()
    word = info.split()[0] if info else ""
    return word.lstrip(".").lower()


def parse(path: Path) -> Page:
    """The page's blocks with their directives; a malformed directive raises, naming the line."""
    page = Page(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    pending: dict[str, str] = {}
    i = 0
    while i < len(lines):
        line = lines[i]
        for kind, value in DIRECTIVE.findall(line):
            if kind == "needs":
                page.needs.extend(value.split())
            elif kind == "fresh":
                server, _, database = value.partition(" ")
                if not database.strip().isidentifier():
                    raise ValueError(f"{path}:{i + 1}: fresh: wants a server and a database name")
                page.fresh.append((server, database.strip()))
                page.needs.append(server)
            else:
                pending[kind] = value
        opened = FENCE.match(line)
        if opened is None:
            if line.strip() and not DIRECTIVE.search(line):
                pending = {}  # a directive belongs to the block right after it
            i += 1
            continue
        fence, indent = opened["fence"], len(opened["indent"])
        body: list[str] = []
        j = i + 1
        while j < len(lines) and not lines[j].strip().startswith(fence):
            body.append(lines[j][indent:] if lines[j][:indent].strip() == "" else lines[j])
            j += 1
        if j == len(lines):
            raise ValueError(f"{path}:{i + 1}: code block never closed")
        block = Block(path, i + 1, _language(opened["info"]), "\n".join(body) + "\n")
        if "file" in pending:
            block.file = pending["file"]
        if "returns" in pending:
            if not pending["returns"].isdigit():
                raise ValueError(
                    f"{path}:{i + 1}: returns: wants an exit code, not {pending['returns']!r}"
                )
            block.returns = int(pending["returns"])
        if "background" in pending:
            block.background = pending["background"]
        if "norun" in pending:
            if not pending["norun"]:
                raise ValueError(f"{path}:{i + 1}: norun: needs its reason")
            block.norun = pending["norun"]
        page.blocks.append(block)
        pending = {}
        i = j + 1
    return page


def console_commands(code: str) -> str:
    """A ``console`` block's commands (the ``$ `` lines, continuations included), as a script."""
    out: list[str] = []
    continuing = False
    for line in code.splitlines():
        if line.startswith("$ "):
            out.append(line[2:])
            continuing = line.endswith("\\")
        elif continuing:
            out.append(line)
            continuing = line.endswith("\\")
    return "\n".join(out) + "\n"
