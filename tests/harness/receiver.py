"""A real HTTP endpoint for the notifier's tests: it records every POST, and answers each with
the status its plan says (a failing first attempt, an endpoint that is down for good)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int
    """What the receiver answered."""

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """Records POSTs; ``plan(n)`` gives the status of the n-th (0-based), 200 by default."""

    def __init__(self, plan: Callable[[int], int] = lambda n: 200) -> None:
        self.plan = plan
        self.received: list[Received] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver._lock:
                    status = receiver.plan(len(receiver.received))
                    receiver.received.append(
                        Received(self.path, dict(self.headers.items()), body, status)
                    )
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hook"

    def accepted(self) -> list[Received]:
        """The POSTs answered 2xx."""
        with self._lock:
            return [r for r in self.received if 200 <= r.status < 300]

    def wait_for(
        self, check: Callable[[list[Received]], bool], timeout_s: float = 60.0, what: str = ""
    ) -> list[Received]:
        """The accepted POSTs once ``check`` holds for them."""
        deadline = time.monotonic() + timeout_s
        while True:
            got = self.accepted()
            if check(got):
                return got
            assert time.monotonic() < deadline, f"timed out waiting for {what}: {got}"
            time.sleep(0.2)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@contextmanager
def receiving(plan: Callable[[int], int] = lambda n: 200) -> Iterator[Receiver]:
    receiver = Receiver(plan)
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop()
