"""How the pages show data-derived text: times as labelled <time>, names and messages isolated
from the text around them, bidirectional controls in names spelled out."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from batchline import Engine, JobParameters
from batchline.backfill.ranges import parse_range
from batchline.backfill.store import BackfillStore
from batchline.repository.audit import AuditLog
from tests.web_server import create_token, requires_web, serving

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


def test_the_audit_instance_and_backfill_pages_spell_out_an_override(tmp_path: Path) -> None:
    """A job named with a right-to-left override, an action by a token so named: the audit,
    instance and backfill pages show the override escaped inside a <bdi>, never obeyed."""
    url = f"sqlite:///{tmp_path / 'repository.db'}"
    job = f"{RLO}tropmi"
    with Engine(url) as engine:
        made = engine.repository.create_job_execution(job, JobParameters({}))
        bind = engine.repository.engine  # type: ignore[attr-defined]
        AuditLog(bind).record(f"{RLO}nimda", "stop", f"job {job}", detail=f"{RLO}detail")
        backfill = BackfillStore(bind).create(
            job,
            parse_range("day:date=2026-11-01..2026-11-02"),
            JobParameters({}),
            concurrency=1,
            restart_failed=False,
            started_by=f"token {RLO}nimda",
        )
    with serving(url) as server, server.client(create_token(url, "viewer", "read")) as client:
        for path in ("/audit", f"/instances/{made.instance.id}", f"/backfills/{backfill.id}"):
            html = client.get(path).text
            if path == "/audit":  # a message keeps its controls, isolated in a <bdi>
                assert f"<bdi>{RLO}detail</bdi>" in html
                html = html.replace(f"<bdi>{RLO}detail</bdi>", "")
            shown_text = re.sub(r"<[^>]*>", "", html)
            assert RLO not in shown_text, path
            assert "[U+202E]tropmi</bdi>" in html, path
