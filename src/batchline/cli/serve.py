"""``batchline serve``: the web dashboard and REST API (the ``web`` extra) on the repository.

Jobs started from the web run in this process's engine, as ``batchline start`` runs them, with
the jobs ``--jobs`` loaded. FastAPI and uvicorn are imported only here, when serving.
"""

from __future__ import annotations

import ipaddress
import socket

import click

from batchline.cli.state import state
from batchline.errors import ConfigurationError


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to any interface


def server_url(host: str, port: int) -> str:
    """The address to print: an IPv6 literal goes in brackets (RFC 3986)."""
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8080, show_default=True)
@click.option(
    "--schedules",
    "schedule_file",
    type=click.Path(dir_okay=False),
    help="Run the cron schedules of this TOML file in the server (see "
    "batchline.triggers.schedule_file); the dashboard lists them at /schedules.",
)
@click.option(
    "--proxy-headers",
    is_flag=True,
    help="Behind a TLS-terminating proxy: take the scheme and client address from its "
    "X-Forwarded-Proto/X-Forwarded-For headers (only from --forwarded-allow-ips), so the "
    "session cookie is Secure and HSTS is sent for HTTPS requests.",
)
@click.option(
    "--forwarded-allow-ips",
    default="127.0.0.1",
    show_default=True,
    help="With --proxy-headers: the proxies' addresses (comma-separated, or '*') trusted.",
)
@click.option(
    "--alerts",
    "alert_file",
    type=click.Path(dir_okay=False),
    help="Send alerts by the rules of this TOML file (see batchline.alerts.rules): failed, "
    "stopped, abandoned, long-running, too many skips; once per event across servers.",
)
@click.option(
    "--alert-webhook",
    multiple=True,
    metavar="URL",
    help="POST every alert as JSON to this URL (repeatable; with or without --alerts).",
)
@click.option(
    "--alert-apprise",
    multiple=True,
    metavar="URL",
    help="Send every alert to this Apprise URL: slack://, mailto://, msteams://... "
    "(repeatable; needs the alerts extra).",
)
def serve(
    host: str,
    port: int,
    schedule_file: str | None,
    proxy_headers: bool,
    forwarded_allow_ips: str,
    alert_file: str | None,
    alert_webhook: tuple[str, ...],
    alert_apprise: tuple[str, ...],
) -> None:
    """Serve the dashboard and the REST API (/api, schema at /api/openapi.json).

    Every request needs a token (`batchline token create`): read to look, operate to start,
    stop, restart, abandon and recover. Listening beyond this machine (a --host other than a
    loopback address) is refused while the repository holds no live token. With --schedules,
    the server also launches jobs on their cron schedules, as `batchline schedule` does.
    """
    try:
        import uvicorn

        from batchline.web.app import create_app
    except ImportError as err:
        raise ConfigurationError(
            f"batchline serve needs the web extra (pip install 'batchline[web]'): {err}"
        ) from None
    from batchline.repository.tokens import TokenStore

    st = state()
    engine = st.engine()
    tokens = TokenStore(getattr(engine.repository, "engine"))  # noqa: B009
    if not is_loopback(host) and not tokens.any_live():
        raise ConfigurationError(
            f"refusing to listen on {host}: the repository holds no live API token "
            "(create one with 'batchline token create NAME --scope read')"
        )
    scheduler = None
    if schedule_file is not None:
        from batchline.triggers.schedule_file import scheduler_from_file

        scheduler = scheduler_from_file(engine, schedule_file)
    alerts = None
    if alert_file is not None or alert_webhook or alert_apprise:
        from batchline.alerts import AlertRules, AlertWatcher

        rules = AlertRules.from_file(alert_file) if alert_file is not None else AlertRules()
        checked = AlertRules.from_mapping({"default": {"webhook": list(alert_webhook)}})
        rules = rules.with_targets(checked.default.webhooks, alert_apprise)
        alerts = AlertWatcher(engine, rules)
    listening = listen(host, port)  # before anything starts: a busy port is one line, exit 2
    app = create_app(engine, tokens, scheduler, alerts)
    click.echo(f"batchline serving on {server_url(host, port)}", err=True)
    # SIGTERM or Ctrl-C: the app's shutdown stops the jobs started from the web first.
    # Forwarded headers only when asked: without a proxy, any client could claim HTTPS.
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        proxy_headers=proxy_headers,
        forwarded_allow_ips=forwarded_allow_ips if proxy_headers else None,
    )
    uvicorn.Server(config).run(sockets=[listening])


def listen(host: str, port: int) -> socket.socket:
    """The server's socket, bound here: uvicorn reports a bind failure as log lines and an
    exit code of its own."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        return socket.create_server((host, port), family=family)
    except OSError as err:
        raise ConfigurationError(f"cannot listen on {host}:{port}: {err.strerror or err}") from None
