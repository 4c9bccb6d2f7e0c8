"""The monitor's analytics for one model: every version it has served, and its retrain requests.

Fed by the join (:mod:`services.monitor.join`) through one route, :meth:`ModelWatch.feed`: each
event goes to its version's :class:`~services.monitor.analytics.version.VersionWatch`. Every
version has its own windows, detectors and alerts, measured against its own reference profile:
after a promotion the new version starts from a clean slate, so the swap itself raises nothing,
and the old version's open alerts are resolved as superseded. A concept-drift or performance
alert that fires becomes a retrain request when the model's
:class:`~services.monitor.retrain.RetrainClaim` allows one.

Deterministic: time is the events' own time, and alert and request ids derive from what they are
about, so a monitor that replays the same events raises the same alerts with the same ids.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import msgspec

from services.monitor.analytics.alerts import NAMESPACE
from services.monitor.analytics.config import MonitorConfig, VersionInfo
from services.monitor.analytics.version import Retrain, VersionState, VersionWatch
from services.monitor.join import Joined, Scored
from services.monitor.retrain import LocalClaim, RetrainClaim
from services.monitor.status import AnalyticsStatus
from shared.core.messages import DriftAlert, RetrainRequest


@dataclass(frozen=True)
class Signals:
    """What one update raised."""

    alerts: list[DriftAlert] = field(default_factory=list)
    retrain: list[RetrainRequest] = field(default_factory=list)
    served: int | None = None
    """The newer version this update made the served one in place of another (a swap)."""

    def __bool__(self) -> bool:
        return bool(self.alerts or self.retrain or self.served is not None)


class ModelWatch:
    """All versions of one model, and its retrain requests."""

    def __init__(
        self,
        model: str,
        config: MonitorConfig,
        describe: Callable[[int], VersionInfo],
        claim: RetrainClaim | None = None,
    ) -> None:
        self.model = model
        self.config = config
        self.describe: Callable[[int], VersionInfo] | None = describe
        self.claim: RetrainClaim = claim or LocalClaim(config.retrain_timeout_ms)
        """Whether a retrain request may go out (one outstanding per model)."""
        self.versions: dict[int, VersionWatch] = {}
        self.current: int | None = None
        self._requests = 0

    @property
    def outstanding(self) -> str | None:
        """The id of the retrain request not yet answered by a new version."""
        return self.claim.holder

    def state(self) -> WatchState:
        """Every version's watch as plain data, for a checkpoint. The registry lookup and a
        claim kept in Redis are not saved: the restoring monitor attaches its own."""
        local = self.claim if isinstance(self.claim, LocalClaim) else None
        return WatchState(
            model=self.model,
            config=self.config,
            versions=[watch.state() for watch in self.versions.values()],
            current=self.current,
            requests=self._requests,
            local_claim=None if local is None else local.state(),
        )

    @classmethod
    def from_state(cls, state: WatchState) -> ModelWatch:
        """The analytics ``state`` describes; :meth:`attach` gives them a registry lookup and
        the retrain claim before they are fed."""
        watch = cls(state.model, state.config, _unattached)
        watch.describe = None
        for saved in state.versions:
            if saved.model != state.model or saved.config != state.config:
                raise ValueError(f"a saved version of {saved.model} does not belong here")
            watch.versions[saved.info.version] = VersionWatch.from_state(saved)
        watch.current = state.current
        watch._requests = state.requests
        if state.local_claim is not None:
            watch.claim = LocalClaim.from_state(state.local_claim)
        return watch

    def attach(self, describe: Callable[[int], VersionInfo], claim: RetrainClaim) -> None:
        """After a restore: the registry lookup and the retrain claim of this monitor."""
        self.describe = describe
        self.claim = claim

    def feed(self, items: Iterable[Scored | Joined]) -> list[Signals]:
        """Observe each scored event and learn from each joined one, in order; return the signals
        of those that raised something or swapped in a newer version (``served``).

        An event of a version already known and not newer than the served one goes straight to
        that version's watch, and nothing is built for an event that raises nothing (each event
        passes through here twice: scored, then joined).
        """
        raised: list[Signals] = []
        versions = self.versions
        for item in items:
            watch = versions.get(item.version)
            current = self.current
            # Alerts resolved by a swap to a newer version; None on the fast path (a known
            # version, not newer than the served one).
            swapped: list[DriftAlert] | None = None
            if watch is None or current is None or item.version > current:
                swapped = []
                watch = self._version(item.version, item.ts, swapped)
            due: Retrain | None = None
            if isinstance(item, Scored):
                found = watch.observe(item)
            else:
                found, due = watch.learn(item)
            if swapped is None and not found and due is None:
                continue  # the common case: nothing to say
            alerts = found if swapped is None else swapped + found
            retrain = [] if due is None else self._request(watch, due)
            served = self.current if current is not None and self.current != current else None
            if alerts or retrain or served is not None:
                raised.append(Signals(alerts=alerts, retrain=retrain, served=served))
        return raised

    def observe(self, event: Scored) -> Signals:
        """:meth:`feed` of one scored event."""
        return self._one(event)

    def learn(self, joined: Joined) -> Signals:
        """:meth:`feed` of one joined event."""
        return self._one(joined)

    def _one(self, item: Scored | Joined) -> Signals:
        found = self.feed((item,))
        return found[0] if found else Signals()

    def _version(self, version: int, ts: int, alerts: list[DriftAlert]) -> VersionWatch:
        watch = self.versions.get(version)
        if watch is None:
            if self.describe is None:
                raise RuntimeError("ModelWatch.describe is unset (restored from a checkpoint?)")
            watch = self.versions[version] = VersionWatch(
                self.model, self.describe(version), self.config
            )
            if self.current is not None and version < self.current:
                watch.retired = True  # a straggler from before a swap
        if self.current is None or version > self.current:
            if self.current is not None:
                before = self.versions.get(self.current)
                if (
                    before is not None
                    and before.error_level is not None
                    and before.labelled >= before.first_labels
                ):
                    watch.predecessor = (self.current, before.error_level)
                for old in self.versions.values():
                    if old.info.version < version and not old.retired:
                        alerts.extend(old.retire(ts, version))
                self.claim.release()  # a new version answers the open retrain request
            self.current = version
        return watch

    def _request(self, watch: VersionWatch, due: Retrain) -> list[RetrainRequest]:
        """The retrain request ``due`` asks for, when the claim allows it."""
        ts = watch.learned_ts
        number = self._requests + 1
        request_id = str(
            uuid.uuid5(NAMESPACE, f"{self.model}/{watch.info.version}/retrain/{number}")
        )
        if due.supersedes:
            self.claim.supersede(request_id, ts)
        elif not self.claim.try_claim(request_id, ts):
            return []
        self._requests = number
        return [
            RetrainRequest(
                request_id=request_id,
                ts=ts,
                model=self.model,
                reason=f"{due.cause.kind} on v{watch.info.version}: {due.cause.message}",
                since_ts=due.since_ts,
            )
        ]

    def summary(self) -> AnalyticsStatus:
        return AnalyticsStatus(
            model=self.model,
            current_version=self.current,
            retrain_outstanding=self.outstanding,
            versions=[self.versions[v].summary() for v in sorted(self.versions, reverse=True)],
        )


class WatchState(msgspec.Struct, frozen=True, kw_only=True):
    """A :class:`ModelWatch` as plain data."""

    model: str
    config: MonitorConfig
    versions: list[VersionState]
    current: int | None
    requests: int
    local_claim: tuple[str | None, int, int] | None


def _unattached(version: int) -> VersionInfo:
    raise RuntimeError("ModelWatch.describe is unset (restored from a checkpoint?)")
