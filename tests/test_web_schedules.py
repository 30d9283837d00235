"""Schedules a real `batchline serve --schedules FILE` runs: listed in the API and on a page
with their next fire times and the executions they launched."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from batchline.testing import eventually
from tests.web_server import Server, create_token, requires_web, serving

requires_web()
pytestmark = pytest.mark.slow

SCHEDULES = """
[[schedule]]
id = "often"
job = "web_partitioned"
cron = "*/2 * * * * *"

[[schedule]]
id = "nightly <b>"
job = "web_count"
cron = "0 2 * * *"
parameters = ["count:int=4"]
"""


def schedule_file(directory: Path) -> Path:
    path = directory / "schedules.toml"
    path.write_text(SCHEDULES, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("schedules")
    with serving(f"sqlite:///{folder / 'repository.db'}", schedules=schedule_file(folder)) as up:
        yield up


def test_api_lists_schedules_with_next_fire_times(server: Server) -> None:
    """Each schedule: job, cron, parameters, a next fire time to come, and (once it fired)
    the executions it launched, newest first."""
    client = server.client(create_token(server.url, "schedule-reader", "read"))

    def launched() -> dict[str, Any] | None:
        found = {s["id"]: s for s in client.get("/api/schedules").json()}
        return found if len(found["often"]["recent"]) >= 2 else None

    found = eventually(launched, timeout=30, message="the schedule never launched twice")
    often, nightly = found["often"], found["nightly <b>"]
    assert (often["job_name"], often["cron"], often["timezone"]) == (
        "web_partitioned",
        "*/2 * * * * *",
        "UTC",
    )
    assert nightly["parameters"] == {"count": {"type": "int", "value": 4, "identifying": True}}
    assert nightly["recent"] == []
    next_nightly = dt.datetime.fromisoformat(nightly["next_fire_time"])
    assert (next_nightly.hour, next_nightly.minute, next_nightly.second) == (2, 0, 0)
    assert next_nightly.utcoffset() == dt.timedelta(0)
    ids = [e["id"] for e in often["recent"]]
    assert ids == sorted(ids, reverse=True)
    assert all("scheduled_at" in e["parameters"] for e in often["recent"])


def test_page_shows_schedules_escaped(server: Server) -> None:
    client = server.client(create_token(server.url, "schedule-page", "read"))
    page = client.get("/schedules").text
    assert 'data-schedule="often"' in page and "<code>*/2 * * * * *</code>" in page
    assert "nightly &lt;b&gt;" in page and "nightly <b>" not in page
    assert "02:00:00 UTC" in page


def test_without_schedules_the_list_is_empty(tmp_path: Path) -> None:
    with serving(f"sqlite:///{tmp_path / 'repository.db'}") as plain:
        client = plain.client(create_token(plain.url, "reader", "read"))
        assert client.get("/api/schedules").json() == []
        assert "runs no schedules" in client.get("/schedules").text


def test_a_bad_schedule_file_stops_serve_with_one_line(tmp_path: Path) -> None:
    from tests.web_server import batchline

    bad = tmp_path / "bad.toml"
    bad.write_text("[[schedule]]\njob = 'ghost'\ncron = '* * * * *'\n", encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'repository.db'}"
    done = batchline(url, "--jobs", "tests.jobs.web_jobs", "serve", "--schedules", str(bad))
    assert done.returncode != 0
    assert done.stderr.startswith("batchline: error: schedule file") and "ghost" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
