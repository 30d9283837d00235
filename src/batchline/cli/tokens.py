"""``batchline token create|list|revoke``: the web API's tokens, kept hashed in the repository."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click
from rich.table import Table

from batchline.cli import audited, output
from batchline.cli.state import state

if TYPE_CHECKING:
    from batchline.repository.tokens import TokenStore

# repository.tokens.SCOPES, spelled out so that `--help` does not load SQLAlchemy.
SCOPES = ("read", "operate")


def store() -> TokenStore:
    from batchline.repository.tokens import TokenStore

    return TokenStore(getattr(state().engine().repository, "engine"))  # noqa: B009


@click.group()
def token() -> None:
    """Tokens for `batchline serve`: read (look) or operate (also start, stop, restart,
    abandon, recover)."""


@token.command()
@click.argument("name")
@click.option("--scope", type=click.Choice(SCOPES), default="read", show_default=True)
def create(name: str, scope: str) -> None:
    """Create a token and print it: the only time it is shown (the repository keeps a hash)."""
    # Who may use the console is decided here: audited like a stop (never the token itself).
    st, target = state(), f"token {name}"
    with audited.refusals(st, "token-create", target):
        secret = store().create(name, scope)
    audited.record(st, "token-create", target, detail=f"scope {scope}")
    click.echo(secret)


@token.command("list")
def list_tokens() -> None:
    """Tokens by name, scope, creation and revocation time (never the tokens themselves)."""
    table = Table(title="API tokens", title_justify="left")
    for column in ("name", "scope", "created", "revoked"):
        table.add_column(column)
    for t in store().list():
        output.add_row(
            table, t.name, t.scope, output.when(t.create_time), output.when(t.revoke_time)
        )
    output.stdout_console().print(table)


@token.command()
@click.argument("name")
def revoke(name: str) -> None:
    """Revoke a token: refused from its next request on."""
    revoked = audited.done(state(), "token-revoke", f"token {name}", lambda: store().revoke(name))
    click.echo(f"revoked {output.printable(revoked.name)}")
