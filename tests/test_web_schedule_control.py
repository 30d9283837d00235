"""Schedules paused, triggered now and resumed from one server: every replica agrees."""

from __future__ import annotations

import datetime as dt
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from batchline.testing import eventually
from tests.web_server import create_token, login, requires_web, serving

requires_web()
pytestmark = pytest.mark.slow

SCHEDULES = """
[[schedule]]
id = "every second"
job = "web_failing"
cron = "* * * * * *"
"""


def launched_after(client: httpx.Client, moment: dt.datetime) -> list[dict[str, Any]]:
    found = client.get("/api/executions", params={"job": "web_failing", "limit": 200}).json()
    return [
        e
        for e in found["items"]
        if dt.datetime.fromisoformat(e["parameters"]["scheduled_at"]["value"]) > moment
    ]


def test_pause_holds_on_every_replica_then_trigger_and_resume(tmp_path: Path) -> None:
    """Paused on server A, neither A nor B fires it; trigger now launches once; resume fires."""
    (tmp_path / "schedules.toml").write_text(SCHEDULES, encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'repository.db'}"
    schedules = tmp_path / "schedules.toml"
    with serving(url, schedules=schedules) as a, serving(url, schedules=schedules) as b:
        token = create_token(url, "scheduler-op", "operate")
        client_a, client_b = a.client(token), b.client(token)
        start = dt.datetime.now(dt.UTC)
        eventually(lambda: launched_after(client_a, start), timeout=30, message="never fired")

        paused = client_a.post("/api/schedules/every second/pause")
        assert paused.status_code == 200 and paused.json()["paused"] is True
        (listed,) = client_b.get("/api/schedules").json()
        assert listed["paused"] is True
        since = dt.datetime.now(dt.UTC)
        time.sleep(3)  # three occurrences due on each replica while paused
        assert launched_after(client_a, since) == []

        triggered = client_b.post("/api/schedules/every second/trigger").json()
        assert triggered["execution_id"] is not None
        assert [e["id"] for e in launched_after(client_a, since)] == [triggered["execution_id"]]

        browser = a.client()
        login(browser, token)
        page = browser.get("/schedules").text
        assert "paused" in page and 'class="schedule-resume"' in page
        csrf = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', page)
        assert csrf is not None
        resumed = browser.post("/schedules/every%20second/resume", data={"csrf_token": csrf[1]})
        assert resumed.status_code == 303 and resumed.headers["location"] == "/schedules"
        again = dt.datetime.now(dt.UTC)
        eventually(lambda: launched_after(client_a, again), timeout=30, message="not resumed")

        audit = [x["action"] for x in client_a.get("/api/audit").json()["items"]]
        assert audit[:3] == ["schedule-resume", "schedule-trigger", "schedule-pause"]
        assert client_a.post("/api/schedules/nothing/pause").status_code == 404
