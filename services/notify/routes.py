"""Where alerts go: routes, each an endpoint of one kind with the alerts it wants.

A route is an Alertmanager (``POST /api/v2/alerts``), a generic webhook (signed JSON) or a
Slack-compatible incoming webhook, and wants the alerts whose kind, severity and model it lists
(an empty list: all; models may be shell-style patterns). Routes come from a TOML file
(``DRIFTLINE_NOTIFY_ROUTES``, ``--routes``) and from the quick flags ``--alertmanager``,
``--webhook`` and ``--slack``, which route everything:

>>> [route] = parse_routes('''
... [[routes]]
... name = "pager"
... type = "alertmanager"
... url = "http://alertmanager:9093"
... severities = ["critical"]
... models = ["churn*"]
... ''', source="routes.toml")
>>> route.name, route.kind, route.endpoint
('pager', 'alertmanager', 'http://alertmanager:9093/api/v2/alerts')
>>> route.wants(kind="concept_drift", severity="critical", model="churn-eu")
True
>>> route.wants(kind="concept_drift", severity="warning", model="churn-eu")
False
"""

from __future__ import annotations

import fnmatch
import os
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args
from urllib.parse import urlsplit

from shared.core.errors import ConfigError
from shared.core.messages import AlertKind, DriftAlert, Severity

RouteKind = Literal["alertmanager", "webhook", "slack"]
ROUTE_KEYS = {"name", "type", "url", "url_env", "kinds", "severities", "models", "secret_env"}


@dataclass(frozen=True)
class Route:
    """One endpoint and the alerts it wants."""

    name: str
    kind: RouteKind
    url: str
    kinds: frozenset[str] = frozenset()
    severities: frozenset[str] = frozenset()
    models: tuple[str, ...] = ()
    secret: bytes | None = field(default=None, repr=False)
    """The webhook's HMAC key: bodies are signed with it when set."""

    @property
    def endpoint(self) -> str:
        """Where bodies are POSTed: Alertmanager's alerts API under its base URL, else the URL."""
        if self.kind == "alertmanager":
            return self.url.rstrip("/") + "/api/v2/alerts"
        return self.url

    def wants(self, *, kind: str, severity: str, model: str) -> bool:
        return (
            (not self.kinds or kind in self.kinds)
            and (not self.severities or severity in self.severities)
            and (not self.models or any(fnmatch.fnmatchcase(model, p) for p in self.models))
        )

    def wants_alert(self, alert: DriftAlert) -> bool:
        return self.wants(kind=alert.kind, severity=alert.severity, model=alert.model)

    def describe(self) -> str:
        """The route for logs and dead letters: its name, kind and where it posts, with no
        secret: a webhook's path (a Slack hook's path is its key) and any password are left out.

        >>> make_route("team", "slack", "https://hooks.slack.com/services/T0/B0/s3cret").describe()
        'team (slack https://hooks.slack.com/...)'
        >>> make_route("am", "alertmanager", "http://u:pw@am:9093").describe()
        'am (alertmanager http://am:9093/api/v2/alerts)'
        """
        parts = urlsplit(self.endpoint)
        host = parts.hostname or ""
        where = f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")
        if self.kind == "alertmanager":
            where += parts.path
        elif parts.path not in ("", "/"):
            where += "/..."
        return f"{self.name} ({self.kind} {where})"


def parse_routes(text: str, *, source: str) -> list[Route]:
    """The routes of a TOML text: a ``[[routes]]`` table each. :class:`ConfigError` naming the
    route and the fix for anything wrong."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML ({exc})") from None
    unknown = set(data) - {"routes"}
    if unknown:
        raise ConfigError(f"{source}: unknown table(s) {sorted(unknown)}; routes are [[routes]]")
    tables = data.get("routes", [])
    if not isinstance(tables, list) or not tables:
        raise ConfigError(f"{source}: no [[routes]] table; see the README's `driftline notify`")
    return [_route(table, f"{source}: route {n + 1}") for n, table in enumerate(tables)]


def _route(table: Any, where: str) -> Route:
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: a route is a table")
    unknown = set(table) - ROUTE_KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)}; known: {sorted(ROUTE_KEYS)}")
    kind = _kind(table.get("type"), where)
    name = table.get("name", kind)
    if not isinstance(name, str) or not name or any(c in name for c in ": /"):
        raise ConfigError(f"{where}: name must be a word without ':', ' ' or '/', got {name!r}")
    secret = None
    if "secret_env" in table:
        variable = table["secret_env"]
        value = os.environ.get(str(variable), "")
        if not value:
            raise ConfigError(f"{where} ({name}): secret_env names {variable!r}, which is unset")
        if kind != "webhook":
            raise ConfigError(f"{where} ({name}): only a webhook route is signed (secret_env)")
        secret = value.encode()
    url = table.get("url")
    if "url_env" in table:
        if url is not None:
            raise ConfigError(f"{where} ({name}): give url or url_env, not both")
        url = os.environ.get(str(table["url_env"]), "")
        if not url:
            raise ConfigError(
                f"{where} ({name}): url_env names {table['url_env']!r}, which is unset"
            )
    return make_route(
        name,
        kind,
        url,
        kinds=_strings(table, "kinds", where, get_args(AlertKind)),
        severities=_strings(table, "severities", where, get_args(Severity)),
        models=_strings(table, "models", where, None),
        secret=secret,
        where=f"{where} ({name})",
    )


def _kind(value: object, where: str) -> RouteKind:
    for known in get_args(RouteKind):
        if value == known:
            return known  # type: ignore[no-any-return]
    raise ConfigError(f"{where}: type must be one of {list(get_args(RouteKind))}, got {value!r}")


def _strings(
    table: dict[str, Any], key: str, where: str, choices: Sequence[str] | None
) -> list[str]:
    found = table.get(key, [])
    if not isinstance(found, list) or not all(isinstance(x, str) for x in found):
        raise ConfigError(f"{where}: {key} is a list of strings, got {found!r}")
    if choices is not None:
        wrong = [x for x in found if x not in choices]
        if wrong:
            raise ConfigError(f"{where}: unknown {key} {wrong}; one of {list(choices)}")
    return found


def make_route(
    name: str,
    kind: RouteKind,
    url: object,
    *,
    kinds: Sequence[str] = (),
    severities: Sequence[str] = (),
    models: Sequence[str] = (),
    secret: bytes | None = None,
    where: str = "",
) -> Route:
    """A checked route; ``url`` must be http(s) with a host."""
    where = where or f"route {name}"
    if not isinstance(url, str) or not url:
        raise ConfigError(f"{where}: url is required (http://HOST:PORT/...)")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        shown = f"{parts.scheme}://{parts.hostname or ''}..." if parts.scheme else "a bare word"
        raise ConfigError(f"{where}: url must be http:// or https:// with a host, got {shown}")
    return Route(
        name, kind, url, frozenset(kinds), frozenset(severities), tuple(models), secret=secret
    )


def load_routes(
    path: Path | None,
    *,
    alertmanager: Sequence[str] = (),
    webhook: Sequence[str] = (),
    slack: Sequence[str] = (),
    webhook_secret: bytes | None = None,
) -> list[Route]:
    """Every route: the file's, then one per quick flag (routing everything); at least one, and
    names unique. ``webhook_secret`` signs the quick webhooks."""
    routes: list[Route] = []
    if path is not None:
        try:
            text = path.expanduser().read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read the routes file {path}: {exc.strerror}") from None
        routes.extend(parse_routes(text, source=str(path)))
    quick: list[tuple[RouteKind, Sequence[str]]] = [
        ("alertmanager", alertmanager),
        ("webhook", webhook),
        ("slack", slack),
    ]
    for kind, urls in quick:
        for n, url in enumerate(urls):
            name = kind if len(urls) == 1 else f"{kind}-{n + 1}"
            secret = webhook_secret if kind == "webhook" else None
            routes.append(make_route(name, kind, url, secret=secret, where=f"--{kind}"))
    if not routes:
        raise ConfigError(
            "no route to deliver alerts to: give --alertmanager URL, --webhook URL or --slack URL, "
            "or a routes file (--routes FILE, DRIFTLINE_NOTIFY_ROUTES)"
        )
    names = [r.name for r in routes]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigError(f"route names must be unique: {twice} named twice; give each a name")
    return routes
