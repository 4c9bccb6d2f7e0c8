"""The model registry on Redis: versions, artifacts, metadata, and the active pointer.

Layout (prefix ``DRIFTLINE_REDIS_PREFIX``): ``model:{name}:versions`` (sorted set of version numbers),
``model:{name}:next`` (counter), ``model:{name}:v:{n}`` (hash: artifact and metadata),
``model:{name}:active`` (served version), ``model:{name}:history`` (earlier active versions, newest
first). Promotion and rollback are single Lua scripts: they set ``active``, keep ``history`` and the
statuses right, and PUBLISH the new version on ``model:{name}:changed``, all at once or not at all.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec

from shared.core.clock import now_ms
from shared.core.errors import ArtifactRejected, ConfigError, ModelNotFound, RedisError
from shared.io.keys import RedisKeys
from shared.io.redis import Redis, redis_errors
from shared.models.version import ModelVersion, Status

if TYPE_CHECKING:
    from shared.models.training import Candidate

# KEYS: active, history, versions. ARGV: version, version-key prefix, channel.
_PROMOTE = """
if not redis.call('ZSCORE', KEYS[3], ARGV[1]) then
  return redis.error_reply('NOVERSION')
end
local previous = redis.call('GET', KEYS[1])
if previous == ARGV[1] then
  return previous
end
redis.call('SET', KEYS[1], ARGV[1])
if previous then
  redis.call('LPUSH', KEYS[2], previous)
  redis.call('HSET', ARGV[2] .. previous, 'status', 'retired')
end
redis.call('HSET', ARGV[2] .. ARGV[1], 'status', 'active')
redis.call('PUBLISH', ARGV[3], ARGV[1])
return previous
"""

# KEYS: active, history. ARGV: version-key prefix, channel.
_ROLLBACK = """
local earlier = redis.call('LPOP', KEYS[2])
if not earlier then
  return redis.error_reply('NOHISTORY')
end
local current = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], earlier)
if current then
  redis.call('HSET', ARGV[1] .. current, 'status', 'rolled_back')
end
redis.call('HSET', ARGV[1] .. earlier, 'status', 'active')
redis.call('PUBLISH', ARGV[2], earlier)
return {current, earlier}
"""


_JSON_FIELDS = (
    "params",
    "features",
    "metrics",
    "reference",
    "classes",
    "trained_on",
    "libraries",
    "schema",
)


@dataclass(frozen=True)
class Promotion:
    """What a promotion or rollback changed."""

    model: str
    previous: int | None
    current: int


def _text(value: bytes | str | None) -> str | None:
    """A value from a client without decode_responses, as text."""
    return value.decode() if isinstance(value, bytes) else value


class Registry:
    """Reads and writes one deployment's models in Redis."""

    def __init__(self, client: Redis, keys: RedisKeys) -> None:
        self._redis = client
        self._keys = keys
        self._promote = client.register_script(_PROMOTE)
        self._rollback = client.register_script(_ROLLBACK)

    @property
    def keys(self) -> RedisKeys:
        return self._keys

    @property
    def client(self) -> Redis:
        """The Redis connection the registry uses."""
        return self._redis

    def register(
        self, candidate: Candidate, *, parent: int | None = None, status: Status = "registered"
    ) -> ModelVersion:
        """Store ``candidate`` as the model's next version and return its record."""
        name = candidate.model
        with redis_errors(f"registering a version of {name}"):
            version = int(self._redis.incr(self._keys.next_version(name)))
        fields: dict[str, Any] = {
            "model": name,
            "version": version,
            "task": candidate.task,
            "algorithm": candidate.algorithm,
            "params": candidate.params,
            "features": candidate.features,
            "format": candidate.format,
            "sha256": candidate.sha256,
            "signature": "",
            "metrics": candidate.metrics,
            "reference": msgspec.to_builtins(candidate.reference),
            "classes": candidate.classes,
            "trained_on": candidate.trained_on,
            "libraries": candidate.libraries,
            "created_at": now_ms(),
            "parent": parent if parent is not None else "",
            "status": status,
            "schema": msgspec.to_builtins(candidate.schema),
        }
        mapping = _stored(fields)
        # Signed as readers will parse it, so the header they compute is the one signed.
        record = self._parse(name, version, {str(k): _text(v) for k, v in mapping.items()})
        mapping["signature"] = candidate.signer.sign(record.header())
        mapping["artifact"] = candidate.artifact
        with redis_errors(f"registering a version of {name}"):
            pipe = self._redis.pipeline(transaction=True)
            pipe.hset(self._keys.version(name, version), mapping=mapping)  # type: ignore[arg-type]
            pipe.zadd(self._keys.versions(name), {str(version): version})
            pipe.execute()
        return self.get(name, version)

    def get(self, model: str, version: int) -> ModelVersion:
        """The record of one version (without its artifact)."""
        fields = [f for f in ModelVersion.__struct_fields__]
        with redis_errors(f"reading {model} v{version}"):
            values = self._redis.hmget(self._keys.version(model, version), fields)
        if values[0] is None:
            raise ModelNotFound(f"model {model!r} has no version {version}")
        raw = {name: _text(value) for name, value in zip(fields, values, strict=True)}
        record = self._parse(model, version, raw)
        if record.model != model or record.version != version:
            raise ArtifactRejected(
                f"the record stored as {model} v{version} says it is {record.model} "
                f"v{record.version}: a copy of another version (a replay), refused"
            )
        return record

    @staticmethod
    def _parse(model: str, version: int, raw: dict[str, str | None]) -> ModelVersion:
        parsed: dict[str, Any] = {}
        try:
            for name, text in raw.items():
                if name in _JSON_FIELDS:
                    parsed[name] = json.loads(text) if text else None
                elif name in ("version", "created_at"):
                    parsed[name] = int(text or 0)
                elif name == "parent":
                    parsed[name] = int(text) if text else None
                elif name == "signature":
                    parsed[name] = text or None
                else:
                    parsed[name] = text
            return msgspec.convert(parsed, ModelVersion)
        except (ValueError, msgspec.ValidationError) as exc:
            raise ArtifactRejected(f"the record of {model} v{version} is not valid: {exc}") from exc

    def artifact(self, model: str, version: int) -> bytes:
        """The artifact bytes of one version."""
        with redis_errors(f"reading the artifact of {model} v{version}"):
            data = self._redis.hget(self._keys.version(model, version), "artifact")
        if data is None:
            raise ModelNotFound(f"model {model!r} has no version {version}")
        return data if isinstance(data, bytes) else data.encode()

    def versions(self, model: str) -> list[ModelVersion]:
        """Every version of ``model``, oldest first."""
        return [self.get(model, number) for number in self.version_numbers(model)]

    def version_numbers(self, model: str) -> list[int]:
        """The numbers of every version of ``model``, oldest first."""
        with redis_errors(f"listing versions of {model}"):
            numbers = self._redis.zrange(self._keys.versions(model), 0, -1)
        return [int(_text(number) or 0) for number in numbers]  # type: ignore[arg-type]

    def models(self) -> list[str]:
        """Names of every model in this deployment's registry."""
        pattern = self._keys.versions("*").replace("\\", "")
        prefix, suffix = pattern.split("*")
        with redis_errors("listing models"):
            found = {
                key.decode()[len(prefix) : -len(suffix)]
                for key in self._redis.scan_iter(match=pattern)
            }
        return sorted(found)

    def claim(self, topic_prefix: str) -> None:
        """Bind these Redis keys to the deployment whose topics start with ``topic_prefix``.

        The first service of a deployment records its topic prefix; a service of another
        deployment that would share the keys (the same ``DRIFTLINE_REDIS_PREFIX`` set by hand) is
        refused, so it never restores the other's checkpoints, takes its locks or serves its
        models. Raises :class:`ConfigError` with the fix."""
        key = self._keys.deployment()
        with redis_errors(f"claiming Redis prefix {self._keys.prefix!r}"):
            self._redis.set(key, topic_prefix, nx=True)
            owner = _text(self._redis.get(key))
        if owner is not None and owner != topic_prefix:
            raise ConfigError(
                f"Redis prefix {self._keys.prefix!r} belongs to the deployment with topic prefix "
                f"{owner!r}, not {topic_prefix!r}: give this deployment its own "
                f"DRIFTLINE_REDIS_PREFIX (leave it unset and it follows the topic prefix)"
            )

    def require(self, model: str) -> None:
        """Raise :class:`ModelNotFound` unless ``model`` has a version, naming the closest ones."""
        known = self.models()
        if model not in known:
            raise ModelNotFound(unknown_model(model, known))

    def active(self, model: str) -> int | None:
        """The version being served, or None when none was promoted yet."""
        with redis_errors(f"reading the active version of {model}"):
            value = self._redis.get(self._keys.active(model))
        return int(value) if isinstance(value, bytes | str) else None

    def history(self, model: str) -> list[int]:
        """Earlier active versions, newest first."""
        with redis_errors(f"reading the history of {model}"):
            return [int(v) for v in self._redis.lrange(self._keys.history(model), 0, -1)]

    def promote(self, model: str, version: int) -> Promotion:
        """Make ``version`` the active one, atomically, and announce it."""
        try:
            with redis_errors(f"promoting {model} v{version}"):
                previous = self._promote(
                    keys=[
                        self._keys.active(model),
                        self._keys.history(model),
                        self._keys.versions(model),
                    ],
                    args=[version, self._keys.version(model, 0)[:-1], self._keys.changed(model)],
                )
        except RedisError as exc:
            if "NOVERSION" in str(exc):
                raise ModelNotFound(f"model {model!r} has no version {version}") from None
            raise
        return Promotion(model, int(previous) if previous is not None else None, version)

    def rollback(self, model: str) -> Promotion:
        """Make the previous active version active again, atomically, and announce it."""
        try:
            with redis_errors(f"rolling back {model}"):
                current, earlier = self._rollback(
                    keys=[self._keys.active(model), self._keys.history(model)],
                    args=[self._keys.version(model, 0)[:-1], self._keys.changed(model)],
                )
        except RedisError as exc:
            if "NOHISTORY" in str(exc):
                raise ModelNotFound(
                    f"model {model!r} has no earlier active version to roll back to"
                ) from None
            raise
        return Promotion(model, int(current) if current is not None else None, int(earlier))


def _stored(fields: dict[str, Any]) -> dict[str | bytes, str | bytes]:
    """A record's fields as the strings its Redis hash holds."""
    return {
        key: json.dumps(value) if key in _JSON_FIELDS else str(value)
        for key, value in fields.items()
    }


def unknown_model(model: str, known: list[str]) -> str:
    """Why ``model`` cannot be found, with the registered names closest to it.

    >>> unknown_model("chrun", ["churn", "fraud"])
    "model 'chrun' is not registered; did you mean 'churn'? (registered: churn, fraud)"
    >>> unknown_model("x", [])
    "model 'x' is not registered, and no model is yet; train one with `driftline train --model x ...`"
    """
    if not known:
        return (
            f"model {model!r} is not registered, and no model is yet; train one with "
            f"`driftline train --model {model} ...`"
        )
    close = difflib.get_close_matches(model, known, n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    shown = ", ".join(known[:10]) + (f" and {len(known) - 10} more" if len(known) > 10 else "")
    return f"model {model!r} is not registered{hint} (registered: {shown})"
