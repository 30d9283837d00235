"""The operations guide's exit-code page lists exactly the exit codes the command line defines,
each with the meaning `batchline --help` prints."""

from __future__ import annotations

import re
from pathlib import Path

from batchline.cli import output

PAGE = Path(__file__).resolve().parents[1] / "docs" / "operations" / "exit-codes.md"


def _help_codes() -> dict[int, str]:
    """The codes and meanings of ``EXIT_CODES_HELP`` (what ``--help`` prints)."""
    found = re.findall(r"^\s+(\d+)\s+(.+)$", output.EXIT_CODES_HELP, re.MULTILINE)
    return {int(code): meaning.strip() for code, meaning in found}


def _page_codes() -> dict[int, str]:
    """The rows of the page's code table: code -> its 'meaning' cell."""
    rows: dict[int, str] = {}
    in_table = False
    for line in PAGE.read_text(encoding="utf-8").splitlines():
        if line.startswith("| code |"):
            in_table = True
            continue
        if in_table and not line.startswith("|"):
            break
        if in_table and not line.startswith("| ---"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            assert cells[0] not in (str(c) for c in rows), f"code {cells[0]} listed twice"
            rows[int(cells[0])] = cells[1]
    return rows


def test_help_and_constants_agree() -> None:
    """The help text's codes are the module's EXIT_* constants, no more, no fewer."""
    constants = {
        value
        for name, value in vars(output).items()
        if name.startswith("EXIT_") and isinstance(value, int)
    }
    assert set(_help_codes()) == constants


def test_the_page_lists_exactly_the_cli_codes() -> None:
    """Every code the CLI defines is on the page with the help's meaning, and no other code."""
    assert _page_codes() == _help_codes()


def test_the_page_names_every_constant() -> None:
    """The page names each EXIT_* constant, so a reader can find them in the code."""
    text = PAGE.read_text(encoding="utf-8")
    names = [n for n, v in vars(output).items() if n.startswith("EXIT_") and isinstance(v, int)]
    missing = [n for n in names if f"`{n}`" not in text]
    assert not missing, f"not named on {PAGE.name}: {missing}"
