"""Schedules from a TOML file, for ``batchline serve --schedules FILE``: what ``batchline
schedule`` takes on its command line, for any number of jobs::

    timezone = "UTC"              # optional, for every schedule; so are the next three
    misfire_grace_time = 300      # seconds; a negative number: however late
    catch_up = true
    coalesce = true

    [[schedule]]
    job = "nightly_import"        # a job loaded with --jobs
    cron = "0 2 * * *"            # 5 fields, or 6 with seconds first
    parameters = ["region=eu", "batch:int=500"]      # NAME[:TYPE]=VALUE, as on the CLI
    non_identifying = ["note=from the server"]
    id = "nightly-eu"             # optional: the schedule's name in the dashboard

Every error names the file and the schedule, and is raised before anything is scheduled.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from batchline.engine import Engine
from batchline.errors import BatchlineError, ConfigurationError
from batchline.parameters import JobParameters
from batchline.triggers.schedule import JobScheduler

_OPTIONS = {"timezone", "misfire_grace_time", "catch_up", "coalesce", "schedule"}
_ENTRY = {"job", "cron", "parameters", "non_identifying", "id", "overlap"}


def _texts(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigurationError(f"{where}: expected a list of NAME[:TYPE]=VALUE strings")
    return tuple(value)


def read_schedule_file(path: str | Path) -> dict[str, Any]:
    """The file's content, checked: unknown keys and wrong types are errors."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise ConfigurationError(f"schedule file {path}: {err}") from None
    unknown = set(data) - _OPTIONS
    if unknown:
        raise ConfigurationError(f"schedule file {path}: unknown keys {sorted(unknown)}")
    entries = data.get("schedule", [])
    if not isinstance(entries, list) or not entries:
        raise ConfigurationError(f"schedule file {path}: no [[schedule]] table")
    for index, entry in enumerate(entries, 1):
        where = f"schedule file {path}, schedule {index}"
        if not isinstance(entry, dict):
            raise ConfigurationError(f"{where}: expected a table")
        if set(entry) - _ENTRY:
            raise ConfigurationError(f"{where}: unknown keys {sorted(set(entry) - _ENTRY)}")
        for key in ("job", "cron"):
            if not isinstance(entry.get(key), str) or not entry[key].strip():
                raise ConfigurationError(f"{where}: {key!r} must be a non-empty string")
        if "id" in entry and not isinstance(entry["id"], str):
            raise ConfigurationError(f"{where}: 'id' must be a string")
        if "overlap" in entry and not isinstance(entry["overlap"], bool):
            raise ConfigurationError(f"{where}: 'overlap' must be true or false")
        _texts(entry.get("parameters", []), f"{where}: 'parameters'")
        _texts(entry.get("non_identifying", []), f"{where}: 'non_identifying'")
    return data


def scheduler_from_file(engine: Engine, path: str | Path) -> JobScheduler:
    """A JobScheduler (not started) with every schedule of the file added."""
    data = read_schedule_file(path)
    grace = data.get("misfire_grace_time", 300.0)
    if not isinstance(grace, int | float) or isinstance(grace, bool):
        raise ConfigurationError(f"schedule file {path}: misfire_grace_time must be a number")
    try:
        scheduler = JobScheduler(
            engine,
            misfire_grace_time=None if grace < 0 else float(grace),
            coalesce=bool(data.get("coalesce", True)),
            catch_up=bool(data.get("catch_up", True)),
            timezone=str(data.get("timezone", "UTC")),
        )
    except Exception as err:  # APScheduler: a time zone it does not know
        raise ConfigurationError(f"schedule file {path}: {type(err).__name__}: {err}") from None
    for index, entry in enumerate(data["schedule"], 1):
        where = f"schedule file {path}, schedule {index} ({entry['job']})"
        try:
            parameters = JobParameters.parse(
                identifying=_texts(entry.get("parameters", []), where),
                non_identifying=_texts(entry.get("non_identifying", []), where),
            )
            scheduler.add(
                entry["job"],
                entry["cron"],
                parameters,
                schedule_id=entry.get("id"),
                overlap=entry.get("overlap", True),
            )
        except BatchlineError as err:
            raise ConfigurationError(f"{where}: {err}") from None
        except Exception as err:  # APScheduler: a time zone it does not know, a duplicate id
            raise ConfigurationError(f"{where}: {type(err).__name__}: {err}") from None
    return scheduler
