"""Alerts: told when an execution fails, stops, is abandoned, runs too long or skips too much.

    rules = AlertRules.from_file("alerts.toml")        # or AlertRules(default=AlertRule(...))
    watcher = AlertWatcher(engine, rules)
    watcher.start()                                     # `batchline serve --alerts FILE` does it

Each event is one row per (execution, kind) in the repository, inserted before anything is
sent: of several servers watching one repository, the one whose insert succeeds sends, the
others skip it, so an alert goes out once. A delivery that fails is recorded with its error and
not retried. Webhooks get a JSON POST; any Apprise URL (the ``alerts`` extra: Slack, e-mail,
Teams and dozens more) gets a title and a body.
"""

from batchline.alerts.rules import KINDS, AlertRule, AlertRules
from batchline.alerts.watcher import Alert, AlertWatcher

__all__ = ["KINDS", "Alert", "AlertRule", "AlertRules", "AlertWatcher"]
