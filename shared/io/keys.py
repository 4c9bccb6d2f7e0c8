"""Redis key names: ``DRIFTLINE_REDIS_PREFIX`` + the layout the README lists, one place for all of them.

>>> k = RedisKeys("driftline:")
>>> k.versions("churn"), k.version("churn", 3)
('driftline:model:churn:versions', 'driftline:model:churn:v:3')
>>> k.active("churn"), k.changed("churn")
('driftline:model:churn:active', 'driftline:model:churn:changed')
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RedisKeys:
    """The key names of one driftline deployment's registry."""

    prefix: str

    def _model(self, model: str) -> str:
        if not model or ":" in model:
            raise ValueError(f"model name must be non-empty and contain no ':', got {model!r}")
        return f"{self.prefix}model:{model}"

    def versions(self, model: str) -> str:
        """Sorted set of the model's version numbers."""
        return f"{self._model(model)}:versions"

    def next_version(self, model: str) -> str:
        """Counter that hands out the model's next version number."""
        return f"{self._model(model)}:next"

    def version(self, model: str, version: int) -> str:
        """Hash holding one version's artifact and metadata."""
        return f"{self._model(model)}:v:{version}"

    def active(self, model: str) -> str:
        """The version being served."""
        return f"{self._model(model)}:active"

    def history(self, model: str) -> str:
        """List of earlier active versions, newest first."""
        return f"{self._model(model)}:history"

    def changed(self, model: str) -> str:
        """Pub/sub channel announcing a promotion or rollback."""
        return f"{self._model(model)}:changed"

    def monitor_checkpoints(self, model: str) -> str:
        """Pattern matching every checkpoint key of the model's monitor (not its status)."""
        return f"{self._model(model)}:monitor:checkpoint:*"

    def monitor_join(self, model: str, partition: int) -> str:
        """The monitor's checkpoint of one partition: its join buffer and input offsets."""
        return f"{self._model(model)}:monitor:checkpoint:join:{partition}"

    def monitor_analytics(self, model: str, partitions: list[int]) -> str:
        """The monitor's checkpoint of the analytics over one set of partitions."""
        joined = ",".join(map(str, sorted(partitions)))
        return f"{self._model(model)}:monitor:checkpoint:analytics:{joined}"

    def monitor_status(self, model: str, instance: str) -> str:
        """One monitor instance's latest status (JSON, expires when the monitor stops)."""
        return f"{self._model(model)}:monitor:status:{instance}"

    def predictor_status(self, model: str, instance: str) -> str:
        """One predictor instance's latest status: the version it serves (JSON, expires)."""
        return f"{self._model(model)}:predictor:status:{instance}"

    def retrain_outstanding(self, model: str) -> str:
        """The retrain request awaiting a new version; held with an expiry, one per model."""
        return f"{self._model(model)}:retrain:outstanding"

    def trainer_requests(self, model: str) -> str:
        """Hash: retrain request id -> what the trainer made of it (JSON); replays stop here."""
        return f"{self._model(model)}:trainer:requests"

    def trainer_status(self, model: str, instance: str) -> str:
        """One trainer instance's latest status (JSON, expires when the trainer stops)."""
        return f"{self._model(model)}:trainer:status:{instance}"

    def lock(self, name: str) -> str:
        """A named lock (the trainer's leader lock, for example)."""
        return f"{self.prefix}lock:{name}"

    def deployment(self) -> str:
        """The topic prefix of the deployment these keys belong to (set by its first service)."""
        return f"{self.prefix}deployment"

    def notify_incidents(self, partition: int) -> str:
        """Hash: incident id -> the notifier's incident of one ``alerts`` partition (JSON)."""
        return f"{self.prefix}notify:{partition}:incidents"

    def notify_outbox(self, partition: int) -> str:
        """Hash: notification id -> a notification not yet delivered (JSON), per partition."""
        return f"{self.prefix}notify:{partition}:outbox"

    def notify_delivered(self, route: str, change: str) -> str:
        """Set (with an expiry) once ``route`` has been told of ``change`` (``ALERT_ID/STATE``)."""
        return f"{self.prefix}notify:delivered:{route}:{change}"

    def notify_status(self, instance: str) -> str:
        """One notifier instance's latest status: its partitions and routes (JSON, expires)."""
        return f"{self.prefix}notify:status:{instance}"
