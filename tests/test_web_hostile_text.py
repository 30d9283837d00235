"""Hostile text everywhere a job or a user can put text the console shows (job, step, decider
and partition names, parameters, exit messages, log lines, skipped items, contexts, token
names, backfill values, schedule names, filters echoed back, error pages), against a real
`batchline serve` in real Chromium: nothing runs (no dialog), no element or attribute is made
from the payload, templates are not evaluated, the REST API returns the payload as JSON data,
and no page is widened past a phone's 390 px by a long unbroken string.

The server loads its jobs from this module (``--jobs tests.test_web_hostile_text``).
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterator
from urllib.parse import quote, urlencode

import httpx
import pytest

from batchline import Decider, JobBuilder, JobExecution, ListWriter, StepBuilder, StepExecution
from batchline.partitioners.ranges import IntegerRangePartitioner
from batchline.testing import eventually
from tests.backends import import_extra
from tests.test_web_browser import ARGS, CHROMIUM, WAIT_MS
from tests.web_server import Server, create_token, requires_web, serving

requires_web()
sync_api = import_extra("playwright.sync_api", "test")

# --- the jobs the server runs ---------------------------------------------------------------

IMG = "\"><img src=x onerror=alert('{}')>"
SVG = "<svg onload=alert('{}')>"
SCRIPT = "</script><script>alert('{}')</script>"
STYLE = "</style><style>*{{display:none}}</style>"
TEMPLATE = "{{7*7}}{% if 1 %}T1{% endif %}"
RLO = "\u202e"
LONG = "W" * 100  # a name of the longest length, unbroken

HOSTILE_JOB = (IMG.format("job") + TEMPLATE)[:100]
LONG_JOB = LONG
STEP = (SVG.format("step") + SCRIPT.format("step"))[:100]
LONG_STEP = "S" * 100
PARTITIONED = SVG.format("part") + "P" * 60  # its partitions are named after it
DECIDER = (TEMPLATE + SVG.format("decider"))[:100]
CODE = IMG.format("code")
ODD = "\x00\u200b" + RLO + "\u2066end"  # NUL (the repository escapes it), zero-width, bidi
MESSAGE = IMG.format("raise") + TEMPLATE + "E" * 300 + ODD
LOG_LINE = SCRIPT.format("log") + IMG.format("log") + "L" * 300 + ODD
SKIPPED = [IMG.format("item"), '=HYPERLINK("http://x")', "ok"]
CONTEXT_KEY = SCRIPT.format("ctxkey")
CONTEXT_VALUE = SCRIPT.format("ctx") + STYLE + "C" * 300 + ODD


class Refused(ValueError):
    pass


def _refuse(item: str) -> str:
    if item != "ok":
        raise Refused(f"refused {item} {SVG.format('skip')}")
    return item


def _fill(se: StepExecution) -> None:
    logging.getLogger("hostile").warning("%s", LOG_LINE)
    time.sleep(float(se.parameters.get("hold", 0)))  # a run the page watches live
    se.context[CONTEXT_KEY] = CONTEXT_VALUE
    se.job_execution.context[CONTEXT_KEY] = CONTEXT_VALUE


def _explode(se: StepExecution) -> None:
    raise RuntimeError(MESSAGE)


def _decide(execution: JobExecution, last: StepExecution | None) -> str:
    return CODE


def _nothing(se: StepExecution) -> None:
    pass


hostile_job = (
    JobBuilder(HOSTILE_JOB)
    .start(StepBuilder(STEP).task(_fill))
    .next(
        StepBuilder(PARTITIONED).partition(
            StepBuilder(LONG_STEP[:94]).task(_nothing), IntegerRangePartitioner(1, 4), grid_size=2
        )
    )
    .next(
        StepBuilder("skips")
        .chunk(2)
        .reader(lambda se: list(SKIPPED))
        .processor(_refuse)
        .writer(ListWriter())
        .skip(Refused, limit=None)
    )
    .next(Decider(DECIDER, _decide))
    .on("*")
    .to(StepBuilder("explode").task(_explode))
    .build()
)

long_job = JobBuilder(LONG_JOB).step(StepBuilder(LONG_STEP).task(_nothing)).build()
# A name whose dot segments a browser would resolve: its links must not lead to payroll.
TRAVERSAL = "../jobs/payroll"
traversal_job = JobBuilder(TRAVERSAL).step(StepBuilder("t").task(_nothing)).build()
payroll_job = JobBuilder("payroll").step(StepBuilder("pay").task(_nothing)).build()


# --- the tests ------------------------------------------------------------------------------

pytestmark = pytest.mark.slow
PHONE = {"width": 390, "height": 844}
TOKEN_NAME = "operator@" + "T" * 91  # token names are letters, digits, _ . @ -: only length hurts
SCHEDULE = IMG.format("schedule") + "Q" * 60
VALUE = SCRIPT.format("param") + RLO + TEMPLATE + "V" * 300
BACKFILL_VALUES = f"region={IMG.format('bf').replace(',', '')},{'B' * 120},{TEMPLATE}"
# What no page may hold once the payloads are in: made from them, these would run.
MADE = "img, [onerror], [onload], script:not([src^='/static/']), style, iframe, object, embed"
MADE_JS = "(sel) => Array.from(document.querySelectorAll(sel), e => e.outerHTML.slice(0, 80))"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("hostile")
    schedules = folder / "schedules.toml"
    schedules.write_text(
        f"[[schedule]]\nid = {json.dumps(SCHEDULE)}\njob = {json.dumps(LONG_JOB)}\n"
        f'cron = "0 2 * * *"\nparameters = [{json.dumps("note=" + VALUE)}]\n',
        encoding="utf-8",
    )
    with serving(
        f"sqlite:///{folder / 'repository.db'}",
        schedules=schedules,
        jobs="tests.test_web_hostile_text",
    ) as running:
        yield running


@pytest.fixture(scope="module")
def token(server: Server) -> str:
    return create_token(server.url, TOKEN_NAME, "operate")


def _ended(client: httpx.Client, execution_id: int) -> bool:
    return client.get(f"/api/executions/{execution_id}").json()["end_time"] is not None


@pytest.fixture(scope="module")
def runs(server: Server, token: str) -> dict[str, int]:
    found: dict[str, int] = {}
    with server.client(token) as client:
        for key, job in (("hostile", HOSTILE_JOB), ("long", LONG_JOB)):
            started = client.post(
                f"/api/jobs/{quote(job, safe='')}/start",
                json={"parameters": {"note": {"value": VALUE}, "n": {"value": "1", "type": "int"}}},
            )
            assert started.status_code == 202, started.text
            found[key] = started.json()["id"]
            found.setdefault("instance", started.json()["instance_id"])  # the hostile one's
        for id_ in found.values():
            eventually(lambda id_=id_: _ended(client, id_), timeout=30)
        made = client.post("/api/backfills", json={"job": LONG_JOB, "values": BACKFILL_VALUES})
        assert made.status_code in (201, 202), made.text
        found["backfill"] = made.json()["id"]
        eventually(
            lambda: (
                client.get(f"/api/backfills/{found['backfill']}").json()["status"]
                not in ("RUNNING", "STOPPING")
            ),
            timeout=30,
        )
    return found


@pytest.fixture(scope="module")
def browser() -> Iterator[sync_api.Browser]:
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def dialogs() -> list[str]:
    """Every dialog a page opened (an alert() that ran), dismissed."""
    return []


@pytest.fixture(scope="module")
def phone(
    browser: sync_api.Browser, server: Server, token: str, dialogs: list[str]
) -> Iterator[sync_api.Page]:
    context = browser.new_context(base_url=server.base, viewport=PHONE)
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto("/login")
    page.fill("input[name=token]", token)
    page.click("form.login button")
    page.wait_for_url(f"{server.base}/")
    yield page
    context.close()


def paths(runs: dict[str, int]) -> list[str]:
    job = quote(HOSTILE_JOB, safe="")
    echoed = {"job": HOSTILE_JOB, "message": MESSAGE[:200], "param": "note=" + VALUE[:200]}
    return [
        "/",
        "/executions",
        "/executions?" + urlencode(echoed),
        "/executions?" + urlencode({"prefix": LONG, "since": IMG.format("since")}),  # a 400
        f"/jobs/{job}",
        f"/jobs/{LONG_JOB}",
        f"/executions/{runs['hostile']}",
        f"/executions/{runs['long']}",
        f"/instances/{runs['instance']}",
        f"/backfills/{runs['backfill']}",
        "/audit",
        "/schedules",
        "/jobs/" + quote(IMG.format("404") + LONG[:60], safe=""),  # the error page quotes it
    ]


def visit(page: sync_api.Page, path: str) -> None:
    page.goto(path)
    if page.locator("#logs").count():  # its lines are fetched after the page loaded
        sync_api.expect(page.locator("#log-state")).to_have_text(re.compile("ended"))


def test_payloads_stay_text_on_every_page(
    phone: sync_api.Page, runs: dict[str, int], dialogs: list[str]
) -> None:
    """No page makes an element or a handler from a payload, nor evaluates a template, nor
    opens a dialog; the payloads are there, as text."""
    for path in paths(runs):
        visit(phone, path)
        made = phone.evaluate(MADE_JS, MADE)
        assert made == [], (path, made)
    phone.goto(f"/executions/{runs['hostile']}")
    text = phone.locator("main").text_content() or ""  # closed <details> too
    for shown in (HOSTILE_JOB, STEP, MESSAGE[:60], "{{7*7}}", CONTEXT_VALUE[:40], SKIPPED[0]):
        assert shown in text, shown
    sync_api.expect(phone.locator("#log-lines")).to_contain_text(LOG_LINE.removesuffix(ODD))
    assert dialogs == []


def test_long_unbroken_text_does_not_widen_a_phone_page(
    phone: sync_api.Page, runs: dict[str, int]
) -> None:
    """A 100-character token name in the header, a job name in a link, step names over the
    contexts, a backfill value in its grid, an error quoting a URL: each breaks at 390 px."""
    wide = {}
    for path in paths(runs):
        visit(phone, path)
        width = phone.evaluate("document.documentElement.scrollWidth")
        if width > PHONE["width"]:
            wide[path[:60]] = width
    assert wide == {}


def test_a_name_with_dot_segments_links_to_its_own_job(
    phone: sync_api.Page, server: Server, runs: dict[str, int]
) -> None:
    """ "../jobs/payroll" must not resolve to /jobs/payroll: its link opens its own page and
    its Start button starts it, not the job its name points at."""
    phone.goto("/")
    row = phone.locator("tr", has=phone.get_by_text(TRAVERSAL, exact=True))
    row.get_by_role("button", name="Start").click()
    phone.wait_for_url("**/executions/*")
    sync_api.expect(phone.locator("h1 bdi")).to_have_text(TRAVERSAL)
    phone.goto("/")
    row.get_by_role("link", name=TRAVERSAL).click()
    sync_api.expect(phone.locator("h1 bdi")).to_have_text(TRAVERSAL)


def test_the_live_view_and_followed_logs_keep_payloads_as_text(
    phone: sync_api.Page, server: Server, token: str, dialogs: list[str]
) -> None:
    """While a run polls its live part and follows its logs, every swap stays text."""
    with server.client(token) as client:
        started = client.post(
            f"/api/jobs/{quote(HOSTILE_JOB, safe='')}/start",
            json={"parameters": {"hold": {"value": "2", "type": "float"}}},
        )
        assert started.status_code == 202, started.text
    phone.goto(f"/executions/{started.json()['id']}")
    sync_api.expect(phone.locator("#live[data-poll]")).to_have_count(1)
    sync_api.expect(phone.locator("#status")).to_have_text("FAILED", timeout=WAIT_MS)
    sync_api.expect(phone.locator("#log-lines")).to_contain_text(LOG_LINE.removesuffix(ODD))
    assert phone.evaluate(MADE_JS, MADE) == []
    sync_api.expect(phone.locator("#exit-message")).to_contain_text(MESSAGE[:60])
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert dialogs == []


def test_the_api_returns_payloads_as_json_data(
    server: Server, token: str, runs: dict[str, int]
) -> None:
    """JSON in, the same text out, as application/json; every answer carries the CSP; the log
    download is an attachment of plain text the browser may not sniff."""
    with server.client(token) as client:
        detail = client.get(f"/api/executions/{runs['hostile']}")
        assert detail.headers["content-type"] == "application/json"
        body = detail.json()
        assert body["job_name"] == HOSTILE_JOB
        assert body["parameters"]["note"]["value"] == VALUE
        assert MESSAGE.removesuffix(ODD) in body["exit_message"]
        assert body["context"][CONTEXT_KEY].startswith(CONTEXT_VALUE.removesuffix(ODD))
        skipped = client.get(f"/api/executions/{runs['hostile']}/skipped").json()["items"]
        assert [s["item"] for s in skipped] == SKIPPED[:2]
        logs = client.get(f"/api/executions/{runs['hostile']}/logs").json()["items"]
        assert any(line["message"].startswith(LOG_LINE.removesuffix(ODD)) for line in logs)
        download = client.get(f"/api/executions/{runs['hostile']}/logs.txt")
        assert download.headers["content-type"] == "text/plain; charset=utf-8"
        assert download.headers["content-disposition"].startswith("attachment;")
        missing = client.get(f"/api/jobs/{quote(IMG.format('api'), safe='')}")
        assert missing.headers["content-type"] == "application/problem+json"
        for answer in (detail, download, missing, client.get("/"), client.get("/nowhere")):
            policy = answer.headers["content-security-policy"]
            assert "script-src 'self';" in policy and "unsafe-inline" not in policy
            assert answer.headers["x-content-type-options"] == "nosniff"
