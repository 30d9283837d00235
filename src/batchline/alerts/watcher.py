"""The watcher: a thread that looks at the repository every few seconds and sends alerts.

It judges the executions from the oldest one still running at its last look (so the scan stays
short however long the history): an ended execution FAILED, STOPPED or ABANDONED, one running
past its limit or far past its job's usual duration, one that ended with more skipped items
than allowed. Each (execution, kind) is claimed in the repository before it is sent.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import urllib.request
from dataclasses import asdict, dataclass

from batchline.alerts.rules import AlertRule, AlertRules
from batchline.engine import Engine
from batchline.errors import ConfigurationError
from batchline.model import utcnow
from batchline.repository.alerts import FAILED, SENT, AlertStore, Watched
from batchline.status import BatchStatus

log = logging.getLogger("batchline.alerts")
SEND_TIMEOUT = 10.0
_ENDED_KINDS = {
    BatchStatus.FAILED.value: "failed",
    BatchStatus.STOPPED.value: "stopped",
    BatchStatus.ABANDONED.value: "abandoned",
}


@dataclass(frozen=True)
class Alert:
    """What is sent: a webhook gets it as JSON; Apprise gets ``title`` and ``message``."""

    kind: str
    job_execution_id: int
    job_name: str
    status: str
    exit_code: str
    exit_message: str
    title: str
    message: str


class AlertWatcher:
    """Watches the repository and sends each alert once, across servers.

    Every ``interval`` seconds (``start`` runs it on a thread; ``check`` is one look) it reads
    the executions not yet looked at, works out which alerts their rule asks for, claims each
    (execution, kind) with a row in the repository and sends the ones it claimed. Several
    servers may watch one repository: only one of them claims, so each alert goes out once.
    Needs an SQL job repository."""

    def __init__(self, engine: Engine, rules: AlertRules, *, interval: float = 5.0) -> None:
        bind = getattr(engine.repository, "engine", None)
        if bind is None:
            raise ConfigurationError("alerts need an SQL job repository")
        self.store = AlertStore(bind)
        self.rules = rules
        self.interval = interval
        self._from: int | None = None
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="batchline-alerts", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._closed.set()
        if self._thread is not None:
            self._thread.join(timeout=SEND_TIMEOUT + 5)

    def _run(self) -> None:
        while not self._closed.is_set():
            try:
                self.check()
            except Exception:  # the repository away: looked at again next interval
                log.warning("alert check failed", exc_info=True)
            self._closed.wait(self.interval)

    def check(self, now: dt.datetime | None = None) -> list[Alert]:
        """One look: every alert due now, claimed and sent; returns what this process sent."""
        now = now or utcnow()
        if self._from is None:
            self._from = self.store.first_unfinished_id()
        watched = self.store.executions_from(self._from)
        claimed = self.store.claimed([w.id for w in watched])
        sent = []
        for w in watched:
            rule = self.rules.for_job(w.job_name)
            if not rule.has_target:
                continue
            for kind, why in self._due(w, rule, now):
                if (w.id, kind) in claimed or not self.store.claim(w.id, kind):
                    continue
                alert = _alert(w, kind, why)
                outcome, detail = self._send(alert, rule)
                self.store.record(w.id, kind, outcome, detail)
                sent.append(alert)
        running = [w.id for w in watched if BatchStatus(w.status).is_running]
        self._from = min(running) if running else (watched[-1].id + 1 if watched else self._from)
        return sent

    def _due(self, w: Watched, rule: AlertRule, now: dt.datetime) -> list[tuple[str, str]]:
        due = []
        running = BatchStatus(w.status).is_running
        kind = _ENDED_KINDS.get(w.status)
        if kind and kind in rule.on:
            due.append((kind, f"ended {w.status}"))
        if "long" in rule.on and w.start_time is not None:
            took = ((w.end_time or now) - w.start_time).total_seconds()
            if rule.max_duration is not None and took > rule.max_duration:
                due.append(("long", f"ran {took:.0f} s, longer than {rule.max_duration:g} s"))
            elif rule.usual_factor is not None and running:
                usual = self.store.usual_seconds(w.job_name)
                if usual is not None and took > usual * rule.usual_factor:
                    due.append(
                        (
                            "long",
                            f"ran {took:.0f} s, {rule.usual_factor:g}x its usual {usual:.0f} s",
                        )
                    )
        if "skips" in rule.on and rule.max_skips is not None and not running:
            skips = self.store.skip_count(w.id)
            if skips > rule.max_skips:
                due.append(("skips", f"skipped {skips} items, more than {rule.max_skips}"))
        return due

    def _send(self, alert: Alert, rule: AlertRule) -> tuple[str, str]:
        errors = []
        for url in rule.webhooks:
            try:
                post_json(url, asdict(alert))
            except Exception as err:
                errors.append(f"webhook {url}: {type(err).__name__}: {err}")
        if rule.apprise:
            try:
                notify_apprise(rule.apprise, alert.title, alert.message)
            except Exception as err:
                errors.append(f"apprise: {type(err).__name__}: {err}")
        for error in errors:
            log.warning("alert %s of execution %d: %s", alert.kind, alert.job_execution_id, error)
        return (FAILED, "; ".join(errors)) if errors else (SENT, "")


def _alert(w: Watched, kind: str, why: str) -> Alert:
    title = f"batchline: {w.job_name} execution {w.id} {kind}"
    message = f"{w.job_name} execution {w.id} {why} (status {w.status}, exit {w.exit_code})"
    if w.exit_message:
        message += "\n" + w.exit_message.splitlines()[0][:500]
    return Alert(
        kind, w.id, w.job_name, w.status, w.exit_code, w.exit_message[:2000], title, message
    )


def post_json(url: str, body: dict[str, object]) -> None:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "User-Agent": "batchline-alerts"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=SEND_TIMEOUT) as answer:
        answer.read()


def notify_apprise(urls: tuple[str, ...], title: str, body: str) -> None:
    try:
        import apprise
    except ImportError as err:
        raise ConfigurationError(
            f"apprise alerts need the alerts extra (pip install 'batchline[alerts]'): {err}"
        ) from None
    notifier = apprise.Apprise()
    for url in urls:
        if not notifier.add(url):
            raise ConfigurationError(f"apprise does not understand the URL {url[:60]!r}")
    if not notifier.notify(title=title, body=body):
        raise ConfigurationError("apprise could not deliver the notification")
