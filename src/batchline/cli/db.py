"""Repository maintenance: ``db upgrade`` and ``purge``."""

from __future__ import annotations

import datetime as dt
import re

import click
from rich.table import Table

from batchline.cli import audited, output
from batchline.cli.state import state
from batchline.model import utcnow

_AGE = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


@click.group()
def db() -> None:
    """The repository database's schema."""


@db.command()
@click.option("--revision", default="head", show_default=True, help="Alembic revision.")
def upgrade(revision: str) -> None:
    """Create the repository tables, or migrate them to REVISION."""
    from alembic.runtime.migration import MigrationContext

    from batchline.repository.database import VERSION_TABLE, create_engine, describe, migrate

    st = state()
    bind = create_engine(
        st.repository, connect_timeout=st.connect_timeout, statement_timeout=st.statement_timeout
    )
    try:
        migrate(bind, revision)
        with bind.connect() as conn:
            # batchline's own version table, not Alembic's default one.
            context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
            current = context.get_current_revision()
        click.echo(f"repository {describe(bind)} is at revision {current}")
    finally:
        bind.dispose()


def parse_cutoff(text: str, now: dt.datetime | None = None) -> dt.datetime:
    """``90d``, ``12h``, ``2w`` (an age) or an ISO date/datetime (UTC unless it says otherwise)."""
    match = _AGE.match(text.strip().lower())
    if match:
        amount, unit = int(match[1]), _UNITS[match[2]]
        try:
            return (now or utcnow()) - dt.timedelta(**{unit: amount})
        except OverflowError:
            raise click.BadParameter(
                f"{text!r} reaches back before the year 1", param_hint="--older-than"
            ) from None
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is neither an age (90d, 12h, 2w) nor an ISO date", param_hint="--older-than"
        ) from None
    return moment.astimezone(dt.UTC).replace(tzinfo=None) if moment.tzinfo else moment


@click.command()
@click.option(
    "--older-than",
    "older_than",
    required=True,
    metavar="AGE|DATE",
    help="An age (90d, 12h, 2w) or an ISO date/datetime (UTC).",
)
@click.option("--dry-run", is_flag=True, help="Count what would go; delete nothing.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
def purge(older_than: str, dry_run: bool, yes: bool) -> None:
    """Delete finished executions created before AGE|DATE, with their steps and contexts.

    Instances left with no executions go too. What a restart still needs is kept.
    """
    from batchline.repository.purge import purge as purge_repository

    cutoff = parse_cutoff(older_than)
    engine = state().engine()
    if not dry_run and not yes:
        click.confirm(
            f"Delete finished executions created before {cutoff:%Y-%m-%d %H:%M:%S} UTC?",
            abort=True,
        )
    st, target = state(), f"executions before {cutoff:%Y-%m-%d %H:%M:%S} UTC"
    if dry_run:
        result = purge_repository(engine.repository, cutoff, dry_run=True)
    else:
        # Deleting history is an operator's action like a stop: the audit says who and what.
        with audited.refusals(st, "purge", target):
            result = purge_repository(engine.repository, cutoff, dry_run=False)
        counts = ", ".join(f"{n} {name}" for name, n in sorted(result.deleted.items()) if n)
        kept = f"; kept {result.kept} a restart needs" if result.kept else ""
        audited.record(st, "purge", target, detail=f"deleted {counts or 'nothing'}{kept}")
    verb = "would delete" if dry_run else "deleted"
    table = Table(title=f"Purge before {cutoff:%Y-%m-%d %H:%M:%S} UTC: rows {verb}")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, count in sorted(result.deleted.items()):
        table.add_row(name, f"{count:,}")
    output.stdout_console().print(table)
    if result.kept:
        click.echo(f"kept {result.kept} old execution(s) that a restart still needs")
