"""Alerts: each event claimed once in the repository and sent to a local webhook (and Apprise)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from batchline import ConfigurationError, Engine, JobBuilder, StepBuilder, StepExecution
from batchline.alerts import AlertRule, AlertRules, AlertWatcher
from batchline.model import utcnow
from batchline.repository.schema import job_execution
from tests.webhook_receiver import receiving


def _explode(se: StepExecution) -> None:
    raise RuntimeError("the load broke")


def _fine(se: StepExecution) -> None:
    pass


class TestWatcher:
    def test_a_failure_is_sent_once_by_two_servers(self, engine: Engine) -> None:
        """Two watchers on one repository: the failure reaches the webhook exactly once."""
        with receiving() as hook:
            rules = AlertRules(AlertRule(webhooks=(hook.url,)))
            first, second = AlertWatcher(engine, rules), AlertWatcher(engine, rules)
            first.check(), second.check()  # both start watching before the run
            job = engine.register(
                JobBuilder("alerted").step(StepBuilder("s").task(_explode)).build()
            )
            failed = engine.start(job)
            sent = first.check() + second.check() + first.check()
            assert [(a.kind, a.job_execution_id) for a in sent] == [("failed", failed.id)]
            (body,) = hook.received()
            assert body["kind"] == "failed" and body["job_name"] == "alerted"
            assert "the load broke" in body["exit_message"]
            assert first.store.outcomes(failed.id) == {"failed": "sent"}

    def test_long_runs_and_per_job_rules(self, sqlite_engine: Engine) -> None:
        """A job's own rule applies (max_duration); a job without a target sends nothing."""
        with receiving() as hook:
            rules = AlertRules(
                AlertRule(),
                {"slow": AlertRule(webhooks=(hook.url,), on=frozenset({"long"}), max_duration=60)},
            )
            watcher = AlertWatcher(sqlite_engine, rules)
            watcher.check()
            slow = sqlite_engine.register(
                JobBuilder("slow").step(StepBuilder("s").task(_fine)).build()
            )
            quiet = sqlite_engine.register(
                JobBuilder("quiet").step(StepBuilder("s").task(_explode)).build()
            )
            done = sqlite_engine.start(slow)
            sqlite_engine.start(quiet)
            # Judged as if it had ended two minutes after it started: past its 60 s.
            with watcher.store.engine.begin() as conn:
                conn.execute(
                    job_execution.update()
                    .where(job_execution.c.id == done.id)
                    .values(end_time=utcnow() + dt.timedelta(minutes=2))
                )
            (alert,) = watcher.check()
            assert alert.kind == "long" and "longer than 60 s" in alert.message
            assert [b["job_execution_id"] for b in hook.received()] == [done.id]

    def test_apprise_delivers_to_a_json_url(self, sqlite_engine: Engine) -> None:
        """An Apprise json:// URL posts the alert's title and body to the local receiver."""
        pytest.importorskip("apprise")
        with receiving() as hook:
            target = hook.url.replace("http://", "json://")
            watcher = AlertWatcher(sqlite_engine, AlertRules(AlertRule(apprise=(target,))))
            watcher.check()
            job = sqlite_engine.register(
                JobBuilder("via_apprise").step(StepBuilder("s").task(_explode)).build()
            )
            failed = sqlite_engine.start(job)
            watcher.check()
            (body,) = hook.received()
            assert f"execution {failed.id} failed" in body["title"]
            assert watcher.store.outcomes(failed.id) == {"failed": "sent"}


class TestRules:
    def test_file_with_default_and_job_sections(self, tmp_path: Path) -> None:
        """[default] applies to every job; [job.NAME] keys replace the default's."""
        path = tmp_path / "alerts.toml"
        path.write_text(
            '[default]\nwebhook = "http://127.0.0.1:9/x"\nmax_skips = 10\n'
            '[job.nightly]\non = ["failed"]\nmax_duration = 600\n',
            encoding="utf-8",
        )
        rules = AlertRules.from_file(path)
        assert rules.for_job("other").max_skips == 10
        nightly = rules.for_job("nightly")
        assert nightly.on == frozenset({"failed"}) and nightly.max_duration == 600
        assert nightly.webhooks == ("http://127.0.0.1:9/x",)

    @pytest.mark.parametrize(
        ("text", "error"),
        [
            ('[default]\non = ["late"]\n', "'late' is not one of"),
            ('[default]\nwebhook = "file:///etc/passwd"\n', "is not an http(s) URL"),
            ("[default]\nmax_skips = -1\n", "'max_skips' must be a positive number"),
            ("[defaults]\n", "unknown section 'defaults'"),
        ],
    )
    def test_bad_files_say_what_is_wrong(self, tmp_path: Path, text: str, error: str) -> None:
        """A bad alert file is refused with one line naming the file and the key."""
        path = tmp_path / "alerts.toml"
        path.write_text(text, encoding="utf-8")
        with pytest.raises(ConfigurationError, match="alert file") as refused:
            AlertRules.from_file(path)
        assert error in str(refused.value)


def test_serve_sends_a_failure_to_its_webhook(tmp_path: Path) -> None:
    """`batchline serve --alert-webhook URL`: a job failing on the server reaches the receiver."""
    from batchline.testing import eventually
    from tests.test_web_api import finished, start
    from tests.web_server import create_token, requires_web, serving

    requires_web()
    url = f"sqlite:///{tmp_path / 'repository.db'}"
    with receiving() as hook, serving(url, serve_options=("--alert-webhook", hook.url)) as up:
        client = up.client(create_token(url, "alerting", "operate"))
        failed = finished(client, start(client, "web_failing")["id"])
        (body,) = eventually(hook.received, timeout=30, message="no alert arrived")
        assert (body["kind"], body["job_execution_id"]) == ("failed", failed["id"])
