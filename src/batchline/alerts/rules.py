"""What to be told of, and where: a default rule and rules per job, from a TOML file.

[default]                         # every job
webhook = "https://hooks.example/batch"
apprise = ["slack://T000/B000/XXXX", "mailto://ops@example.com"]
on = ["failed", "stopped", "abandoned", "long", "skips"]
max_duration = 3600               # seconds: "long" past this
usual_factor = 3                  # or past 3 times the job's usual (mean of its last runs)
max_skips = 100                   # "skips" past this many skipped items

[job.nightly_import]              # this job: these keys replace the default's
max_duration = 600
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from batchline.errors import ConfigurationError

KINDS = ("failed", "stopped", "abandoned", "long", "skips")
_KEYS = {"webhook", "apprise", "on", "max_duration", "usual_factor", "max_skips"}


@dataclass(frozen=True)
class AlertRule:
    """What to be told of and where.

    Attributes:
        webhooks: URLs that receive a JSON POST per alert.
        apprise: Apprise URLs (``slack://...``, ``mailto://...``; the ``alerts`` extra).
        on: the kinds of alert wanted, among ``failed``, ``stopped``, ``abandoned``, ``long``
            and ``skips`` (all by default).
        max_duration: ``long`` once an execution ran longer than this many seconds.
        usual_factor: ``long`` once a running execution ran this many times the job's usual
            duration (the mean of its last runs).
        max_skips: ``skips`` once an ended execution skipped more than this many items."""

    webhooks: tuple[str, ...] = ()
    apprise: tuple[str, ...] = ()
    on: frozenset[str] = frozenset(KINDS)
    max_duration: float | None = None
    usual_factor: float | None = None
    max_skips: int | None = None

    @property
    def has_target(self) -> bool:
        return bool(self.webhooks or self.apprise)


@dataclass(frozen=True)
class AlertRules:
    """A default ``AlertRule`` and rules per job name.

    ``from_file`` reads them from TOML (``serve --alerts FILE``): a ``[default]`` table and
    ``[job.NAME]`` tables whose keys replace the default's for that job. ``for_job`` gives the
    rule that applies to a job."""

    default: AlertRule = AlertRule()
    jobs: dict[str, AlertRule] = field(default_factory=dict)

    def for_job(self, job_name: str) -> AlertRule:
        return self.jobs.get(job_name, self.default)

    @classmethod
    def from_file(cls, path: str | Path) -> AlertRules:
        where = f"alert file {str(path)!r}"
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
            raise ConfigurationError(f"{where}: {err}") from None
        return cls.from_mapping(data, where)

    @classmethod
    def from_mapping(cls, data: dict[str, Any], where: str = "alerts") -> AlertRules:
        unknown = set(data) - {"default", "job"}
        if unknown:
            raise ConfigurationError(f"{where}: unknown section {sorted(unknown)[0]!r}")
        default = _rule(AlertRule(), data.get("default", {}), f"{where} [default]")
        jobs = data.get("job", {})
        if not isinstance(jobs, dict):
            raise ConfigurationError(f"{where}: [job.NAME] sections expected")
        return cls(
            default,
            {name: _rule(default, v, f"{where} [job.{name}]") for name, v in jobs.items()},
        )

    def with_targets(self, webhooks: tuple[str, ...], apprise: tuple[str, ...]) -> AlertRules:
        """Add targets (serve's --alert-webhook, --alert-apprise) to every rule."""

        def more(rule: AlertRule) -> AlertRule:
            return replace(rule, webhooks=rule.webhooks + webhooks, apprise=rule.apprise + apprise)

        return AlertRules(more(self.default), {n: more(r) for n, r in self.jobs.items()})


def _rule(base: AlertRule, section: Any, where: str) -> AlertRule:
    if not isinstance(section, dict):
        raise ConfigurationError(f"{where}: a table expected")
    unknown = set(section) - _KEYS
    if unknown:
        raise ConfigurationError(f"{where}: unknown key {sorted(unknown)[0]!r}")
    changes: dict[str, Any] = {}
    if "webhook" in section:
        changes["webhooks"] = _urls(section["webhook"], f"{where}: 'webhook'")
        for url in changes["webhooks"]:
            if not url.startswith(("http://", "https://")):
                raise ConfigurationError(f"{where}: 'webhook' {url!r} is not an http(s) URL")
    if "apprise" in section:
        changes["apprise"] = _urls(section["apprise"], f"{where}: 'apprise'")
    if "on" in section:
        kinds = _urls(section["on"], f"{where}: 'on'")
        bad = [k for k in kinds if k not in KINDS]
        if bad:
            raise ConfigurationError(f"{where}: 'on' {bad[0]!r} is not one of {', '.join(KINDS)}")
        changes["on"] = frozenset(kinds)
    for key, kind in (("max_duration", float), ("usual_factor", float), ("max_skips", int)):
        if key in section:
            value = section[key]
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise ConfigurationError(f"{where}: {key!r} must be a positive number")
            changes[key] = kind(value)
    return replace(base, **changes)


def _urls(value: Any, where: str) -> tuple[str, ...]:
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ConfigurationError(f"{where} must be a string or a list of strings")
    return tuple(values)
