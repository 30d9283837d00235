"""How the pages show data-derived text: times as labelled <time>, names and messages isolated
from the text around them, bidirectional controls in names spelled out."""

from __future__ import annotations

import datetime as dt
import re

from tests.web_server import requires_web

requires_web()

from batchline.web import display, models  # noqa: E402
from batchline.web.pages import templates  # noqa: E402

RLO = "\u202e"  # right-to-left override: "\u202egnp.exe" reads "exe.png"


def test_a_time_is_utc_in_a_labelled_time_element() -> None:
    """Naive (the repository's UTC) and aware times both render as UTC, labelled."""
    naive = dt.datetime(2026, 12, 6, 5, 30, 1)
    aware = dt.datetime(2026, 12, 6, 14, 30, 1, tzinfo=dt.timezone(dt.timedelta(hours=9)))
    expected = '<time datetime="2026-12-06T05:30:01Z">2026-12-06 05:30:01 UTC</time>'
    assert str(display.when(naive)) == str(display.when(aware)) == expected
    assert display.when(None) == "-"


def test_a_name_shows_its_controls_and_cannot_reach_past_itself() -> None:
    """A right-to-left override in a name is spelled out, the name isolated and escaped."""
    shown = str(display.name(f"{RLO}gnp.exe<b>"))
    assert shown == '<bdi class="name">[U+202E]gnp.exe&lt;b&gt;</bdi>'
    assert RLO not in shown


def test_natural_order_reads_numbers() -> None:
    """Runs of digits compare as numbers; any text sorts."""
    names = ["p:10", "p:2", "p:1", "q", "p:²", "p:02x"]
    assert sorted(names, key=display.natural) == ["p:1", "p:2", "p:02x", "p:10", "p:²", "q"]


def test_the_overview_isolates_a_job_that_poses_as_another() -> None:
    """A job named with an override shows the override, inside its own <bdi>; the start form's
    label spells it out too."""
    job = models.Job(
        name=f"{RLO}tropmi",
        registered=True,
        steps=["s"],
        last=None,
        counts={},
        average_seconds=None,
    )
    html = templates.get_template("overview.html").render(
        jobs=[job], caller=None, csrf="x", can_operate=True
    )
    shown_text = re.sub(r"<[^>]*>", "", html)  # what the page shows, attributes aside
    assert RLO not in shown_text
    assert '<bdi class="name">[U+202E]tropmi</bdi>' in html
    assert 'aria-label="parameters of [U+202E]tropmi"' in html
