"""A real Alertmanager (Debian's ``prometheus-alertmanager``) for the notifier's tests: one
route, grouped by incident, to a webhook receiver the test holds."""

from __future__ import annotations

import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import free_port

ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")


@contextmanager
def alertmanager(folder: Path, receiver_url: str, resolve_timeout: str = "5m") -> Iterator[str]:
    """An Alertmanager that pages ``receiver_url`` (with resolutions) within a second of an
    incident's alerts, and ends an alert nobody re-posts after ``resolve_timeout``; its base
    URL."""
    assert ALERTMANAGER is not None, "prometheus-alertmanager is not installed"
    port = free_port()
    config = folder / "alertmanager.yml"
    config.write_text(
        f"global:\n  resolve_timeout: {resolve_timeout}\n"
        "route:\n"
        "  receiver: pager\n"
        "  group_by: [incident]\n"
        "  group_wait: 1s\n"
        "  group_interval: 1s\n"
        "  repeat_interval: 1h\n"
        "receivers:\n"
        "  - name: pager\n"
        "    webhook_configs:\n"
        f"      - url: {receiver_url}\n"
        "        send_resolved: true\n"
    )
    log_path = folder / "alertmanager.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [
                ALERTMANAGER,
                f"--config.file={config}",
                f"--storage.path={folder / 'am-data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address=",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    with urllib.request.urlopen(f"{url}/-/ready", timeout=2):  # noqa: S310
                        break
                except OSError:
                    assert process.poll() is None, log_path.read_text()[-3000:]
                    assert time.monotonic() < deadline, "alertmanager did not get ready"
                    time.sleep(0.2)
            yield url
        finally:
            process.terminate()
            process.wait(timeout=30)
