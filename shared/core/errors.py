"""driftline's exceptions.

Every error driftline raises on purpose derives from :class:`DriftlineError`, so a caller can catch
one type. Errors of kafka-python and redis-py are translated into these where we call them
(``shared.io.kafka``, ``shared.io.redis``), never further in.

::

    DriftlineError
    ├── ConfigError          a setting is missing, malformed or contradicts another
    ├── BadMessage           a message failed to decode or validate
    ├── ModelNotFound        a model or version is not in the registry
    ├── ArtifactRejected     a model artifact failed its sha256 or signature check
    ├── InfraError           a local server could not be fetched, started or stopped
    ├── KafkaError           Kafka did not answer or refused a request
    └── RedisError           Redis did not answer or refused a request

Each carries a message written for the person who has to fix it: what went wrong and what to do.
"""

from __future__ import annotations


class DriftlineError(Exception):
    """Base of every error driftline raises on purpose."""


class ConfigError(DriftlineError):
    """Raised when a setting is missing, malformed, or contradicts another."""


class BadMessage(DriftlineError):  # noqa: N818 - the name says what it is, like httpx's InvalidURL
    """Raised when a Kafka message cannot be decoded or fails validation.

    ``field`` is a JSONPath-like location (``$`` for the whole payload, ``features.x`` for one
    feature) and ``reason`` says what is wrong with it.
    """

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class ModelNotFound(DriftlineError):  # noqa: N818
    """Raised when a model name or version is not in the registry."""


class ArtifactRejected(DriftlineError):  # noqa: N818
    """Raised when a model artifact's sha256 or signature does not verify; nothing was loaded."""


class InfraError(DriftlineError):
    """Raised when a local Kafka or Redis cannot be fetched, started, reached or stopped."""


class KafkaError(DriftlineError):
    """Raised when Kafka does not answer or refuses a request.

    ``retriable`` is copied from the client's error: True when the same call may succeed later
    (for a transaction step that timed out: call it again to go on waiting). ``abortable``: the
    transaction in progress can no longer commit and must be aborted (the producer lives on).
    """

    def __init__(self, message: str, *, retriable: bool = False, abortable: bool = False) -> None:
        super().__init__(message)
        self.retriable = retriable
        self.abortable = abortable


class RedisError(DriftlineError):
    """Raised when Redis does not answer or refuses a request."""
