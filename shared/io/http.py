"""Each service's small HTTP endpoint: ``/healthz``, ``/readyz`` and Prometheus ``/metrics``.

``/healthz`` answers 200 while the service's loop is alive; ``/readyz`` answers 200 when it can do
its work (for the predictor: a model loaded and partitions assigned) and 503 with the reason when
not. Both reply with a small JSON object.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app

from shared.core.errors import ConfigError

log = logging.getLogger(__name__)

Check = Callable[[], tuple[bool, str]]


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes every few seconds are not news; errors still reach the logs via the server."""


class HealthServer:
    """Serves the health, readiness and metrics endpoints on a thread of its own."""

    def __init__(
        self, host: str, port: int, metrics: CollectorRegistry, live: Check, ready: Check
    ) -> None:
        self._metrics_app = make_wsgi_app(metrics)
        self._live = live
        self._ready = ready
        try:
            self._server = make_server(
                host, port, self._app, server_class=_ThreadingServer, handler_class=_QuietHandler
            )
        except OSError as exc:
            raise ConfigError(
                f"cannot serve health and metrics on {host}:{port} ({exc.strerror}); choose another "
                "port with --http-port / DRIFTLINE_HTTP_PORT (0 picks a free one)"
            ) from None
        self._thread = threading.Thread(target=self._server.serve_forever, name="http", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()
        log.info(
            "health and metrics on http://%s:%d (/healthz /readyz /metrics)",
            self._server.server_address[0],
            self.port,
        )

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            return self._metrics_app(environ, start_response)  # type: ignore[no-any-return]
        if path in ("/healthz", "/readyz"):
            ok, reason = (self._live if path == "/healthz" else self._ready)()
            body = json.dumps({"ok": ok, "reason": reason}).encode()
            status = "200 OK" if ok else "503 Service Unavailable"
            start_response(
                status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
            )
            return [body]
        body = b'{"error": "not found; try /healthz, /readyz or /metrics"}'
        start_response("404 Not Found", [("Content-Type", "application/json")])
        return [body]
