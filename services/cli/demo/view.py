"""What `driftline demo` shows while it runs, and what it reads back at the end.

In a terminal: a live panel (rich) with the run's progress, throughput and consumer lag per
service, the serving version, rolling error per version, drifting features, and alerts and swaps as
they happen. Elsewhere (a pipe, CI, ``--json``): a progress line on stderr every few seconds.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table

from services.cli.demo.feed import FeedProgress
from shared.core.settings import Settings
from shared.core.topics import Topics
from shared.infra.stack import Endpoints
from shared.io.kafka import TopicPartition, plain_admin, plain_consumer, read_to_end
from shared.io.keys import RedisKeys
from shared.io.redis import connect_redis
from shared.registry.store import Registry

log = logging.getLogger(__name__)

REFRESH_S = 1.0
PLAIN_EVERY_S = 5.0


class DemoView:
    def __init__(
        self,
        settings: Settings,
        endpoints: Endpoints,
        model: str,
        events: int,
        drift_at: int,
        *,
        live: bool,
        initial: int = 1,
    ) -> None:
        self.model = model
        self.events = events
        self.drift_at = drift_at
        self._topics = Topics(settings.topic_prefix)
        self._bootstrap = endpoints.kafka
        self._redis = connect_redis(endpoints.redis_url)
        self._keys = RedisKeys(settings.redis_prefix)
        self._registry = Registry(self._redis, self._keys)
        self._admin = plain_admin(endpoints.kafka)
        self._ends = plain_consumer(endpoints.kafka)
        self._live = Live(console=Console(stderr=True), refresh_per_second=4) if live else None
        self._last = 0.0
        self._last_plain = 0.0
        self._progress = FeedProgress()
        self._consumed: dict[str, tuple[float, int]] = {}
        self._rates: dict[str, float] = {}
        self.timeline: list[str] = []
        self._seen_versions = {initial}
        self._seen_alerts: set[tuple[str, str]] = set()

    def __enter__(self) -> DemoView:
        if self._live is not None:
            self._live.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._live is not None:
            self._live.stop()
        self._admin.close()
        self._ends.close()

    # ---- while it runs ---------------------------------------------------------------------

    def update(self, progress: FeedProgress) -> None:
        self._progress = progress
        now = time.monotonic()
        if now - self._last < REFRESH_S:
            return
        self._last = now
        state = self._state()
        if self._live is not None:
            self._live.update(self._render(state))
        elif now - self._last_plain >= PLAIN_EVERY_S:
            self._last_plain = now
            print(self._plain(state), file=sys.stderr, flush=True)

    def settle(self, timeout_s: float, *, concept: bool, initial: int) -> None:
        """After the stream: wait until predictor and monitor have caught up and, for concept
        drift, a new version serves (or ``timeout_s`` passes)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self._last = 0.0
            self.update(self._progress)
            lags = self._lags()
            caught_up = all(lag == 0 for lag in lags.values())
            looped = not concept or (self.active() or initial) > initial
            if caught_up and looped:
                break
            time.sleep(1.0)
        time.sleep(3.0)  # the monitor's last checkpoint and examples

    def _state(self) -> dict[str, Any]:
        lags = self._lags()
        active = self.active()
        monitor = self._status(self._keys.monitor_status(self.model, "*"))
        trainer = self._status(self._keys.trainer_status(self.model, "*"))
        for version in (monitor or {}).get("versions", []):
            for name in version.get("firing", []):
                if (str(version["version"]), name) not in self._seen_alerts:
                    self._seen_alerts.add((str(version["version"]), name))
                    self.timeline.append(
                        f"{self._progress.sent:,}: alert firing on v{version['version']}: {name}"
                    )
        if active is not None and active not in self._seen_versions:
            self._seen_versions.add(active)
            self.timeline.append(f"{self._progress.sent:,}: v{active} promoted and served")
        return {"lags": lags, "active": active, "monitor": monitor, "trainer": trainer}

    def _status(self, pattern: str) -> dict[str, Any] | None:
        for key in self._redis.scan_iter(match=pattern):
            text = self._redis.get(key)
            if text:
                return dict(json.loads(text))
        return None

    def _lags(self) -> dict[str, int]:
        """Records not yet consumed (committed) per service's group."""
        groups = {
            "predictor": (self._topics.group("predictor", self.model), [self._topics.features]),
            # The monitor reads predictions (which carry the features) and labels, not features.
            "monitor": (
                self._topics.group("monitor", self.model),
                [self._topics.predictions, self._topics.labels],
            ),
        }
        lags: dict[str, int] = {}
        now = time.monotonic()
        for name, (group, topics) in groups.items():
            try:
                committed = self._admin.list_group_offsets(group).get(group, {})
                tps = [
                    TopicPartition(topic, p)
                    for topic in topics
                    for p in sorted(self._ends.partitions_for_topic(topic) or [])
                ]
                ends = self._ends.end_offsets(tps)
            except Exception as exc:  # a view must not stop the demo
                log.debug("could not read the lag of %s: %s", group, exc)
                continue
            done = sum(committed[tp].offset for tp in tps if tp in committed)
            lags[name] = sum(ends.values()) - done
            before = self._consumed.get(name)
            if before is not None and now > before[0]:
                self._rates[name] = (done - before[1]) / (now - before[0]) / len(topics)
            self._consumed[name] = (now, done)
        return lags

    def _render(self, state: dict[str, Any]) -> Group:
        return render_panel(
            Panel(
                self.model,
                self.events,
                self.drift_at,
                self._progress.sent,
                state,
                dict(self._rates),
                list(self.timeline),
            )
        )

    def _plain(self, state: dict[str, Any]) -> str:
        monitor = state["monitor"] or {}
        joined = (monitor.get("join") or {}).get("joined", 0)
        return (
            f"driftline demo: {self._progress.sent:,}/{self.events:,} events sent, "
            f"serving v{state['active']}, joined {joined:,}, lag {state['lags']}"
        )

    # ---- at the end ------------------------------------------------------------------------

    def active(self) -> int | None:
        return self._registry.active(self.model)

    def predictions(self) -> list[dict[str, Any]]:
        found = []
        for record in read_to_end(self._bootstrap, self._topics.predictions):
            data = json.loads(record.value)
            if data.get("model") == self.model:
                found.append(data)
        return found

    def alerts(self) -> list[tuple[int, dict[str, Any]]]:
        found = []
        for record in read_to_end(self._bootstrap, self._topics.alerts):
            data = json.loads(record.value)
            if data.get("model") == self.model:
                found.append((int(record.timestamp), data))
        return found

    def dead_letters(self, since_ms: int) -> int:
        return sum(
            1
            for record in read_to_end(self._bootstrap, self._topics.dlq)
            if record.timestamp >= since_ms
        )


@dataclass(frozen=True)
class Panel:
    """Everything the live panel shows, gathered once per refresh."""

    model: str
    events: int
    drift_at: int
    sent: int
    state: dict[str, Any]
    """``lags``, ``active``, and the latest ``monitor`` and ``trainer`` status (or None)."""
    rates: dict[str, float]
    timeline: list[str]


def render_panel(panel: Panel) -> Group:
    """The live panel: progress, services, rolling error per version, alerts and swaps."""
    state = panel.state
    head = Table.grid(padding=(0, 2))
    phase = "before drift" if panel.sent < panel.drift_at else "drift injected"
    head.add_row(
        f"[b]driftline demo[/b] {panel.model}",
        f"events {panel.sent:,} / {panel.events:,} ({phase} at {panel.drift_at:,})",
        f"serving [b]v{state['active']}[/b]",
    )
    services = Table(title="services", expand=False)
    for column in ("service", "events/s", "lag"):
        services.add_column(column)
    for name in ("predictor", "monitor"):
        rate = panel.rates.get(name)
        services.add_row(
            name, "-" if rate is None else f"{rate:,.0f}", str(state["lags"].get(name, "-"))
        )
    trainer = state["trainer"]
    if trainer:
        waiting = "; ".join(p["waiting"] for p in trainer["pending"] if p["waiting"])
        services.add_row("trainer", f"{trainer['examples']:,} examples", waiting or "idle")
    versions = Table(title="rolling error per version")
    for column in ("version", "labelled", "metrics (last window)", "drifting"):
        versions.add_column(column)
    for version in (state["monitor"] or {}).get("versions", [])[:3]:
        metrics = ", ".join(f"{k} {v:.3g}" for k, v in version["metrics"].items() if v is not None)
        drifting = ", ".join(d["feature"] for d in version["drift"] if d["drifting"])
        versions.add_row(
            f"v{version['version']}", str(version["labelled"]), metrics or "-", drifting or "-"
        )
    events = Table(title="alerts and swaps")
    events.add_column("event")
    for line in panel.timeline[-6:]:
        events.add_row(line)
    bar = ProgressBar(total=panel.events, completed=panel.sent)
    return Group(head, bar, services, versions, events)
