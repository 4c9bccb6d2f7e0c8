"""Typed messages of every driftline topic, each with its JSON encoding beside it.

One class per topic (the README's table of topics). ``Cls.decode(data)`` validates as it parses (msgspec) and raises
:class:`~shared.core.errors.BadMessage` naming the field and the reason for: a payload over the size
limit (checked before parsing), bytes that are not UTF-8, invalid JSON, JSON that is not an object,
a missing or wrongly typed field, NaN or Infinity anywhere, and an unknown schema version ``v``.
``msg.encode()`` is the inverse, and refuses to write a message holding a non-finite number (JSON has
none; decoding cannot produce one, so the check runs where messages are written, not read).

``ts`` is event time in epoch milliseconds. It is optional on what users write (features, labels):
pass the Kafka record timestamp as ``default_ts`` and an absent ``ts`` takes it.

>>> event = FeatureEvent.decode(b'{"event_id": "e1", "features": {"x": 1.5}}', default_ts=1000)
>>> event.event_id, event.ts, event.features
('e1', 1000, {'x': 1.5})
>>> FeatureEvent.decode(b'{"event_id": "e1", "features": {"x": "DE", "y": null, "n": 3}}').features
{'x': 'DE', 'y': None, 'n': 3}

A feature event's values may be anything JSON holds: only the serving version's schema
(:mod:`shared.core.schema`) says which features it reads and of what kind, so an extra feature is
never a reason to refuse an event. What driftline writes (predictions, examples) holds only checked
values: numbers, booleans, categories and nulls.
>>> Label(event_id="e1", ts=5, label=1).encode()
b'{"v":1,"event_id":"e1","ts":5,"label":1}'
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any, ClassVar, Literal, Self

import msgspec
import numpy as np

from shared.core.errors import BadMessage

SCHEMA_VERSION: Literal[1] = 1
DEFAULT_MAX_BYTES = 1 << 20
OUTPUT_MAX_BYTES = 1_000_000
"""The largest record value driftline writes: Kafka's default limit for a record batch is
1,048,588 bytes, and the batch adds its headers and the key."""

EventId = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
Millis = Annotated[int, msgspec.Meta(ge=0)]
Version = Annotated[int, msgspec.Meta(ge=1)]
Int64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
"""An integer that numpy, msgpack and Kafka's other clients hold; a JSON integer past it is bad
input (``1`` followed by 400 zeros once made every monitor checkpoint fail)."""
FeatureName = Annotated[str, msgspec.Meta(min_length=1)]
Category = Annotated[str, msgspec.Meta(max_length=256)]
FeatureValue = bool | Int64 | float | Category | None
"""A checked feature value: a number (integers stay integers), a boolean, a category or null."""
Features = dict[FeatureName, FeatureValue]
RawFeatures = dict[FeatureName, Any]
"""A user's features: any JSON value, checked against the model's schema by the predictor."""
Target = bool | Int64 | float | str
"""A label or a prediction: a class (bool, int or str) or a regression value (number)."""

AlertKind = Literal[
    "data_drift", "prediction_drift", "concept_drift", "performance", "model_load", "data_quality"
]
Severity = Literal["info", "warning", "critical"]
ModelEventKind = Literal["registered", "promoted", "rejected", "rolled_back"]

_MSGSPEC_PATH = re.compile(
    r"^(?P<reason>.*?)(?: - at (?P<key>`key` in )?`(?P<path>[^`]*)`)?$", re.DOTALL
)
_NON_FINITE_TOKENS = (b"NaN", b"Infinity", b"-Infinity", b"-NaN")
_DEPTH = "~1,000"
"""How deep JSON may nest before msgspec (and Python's json) give up: the interpreter's
recursion limit."""
_BYTE_POSITION = re.compile(r"\(byte (\d+)\)")


class Message(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=False):
    """Base of every driftline message: a versioned JSON object.

    Unknown fields are ignored on decode, so a newer writer can add fields without breaking older
    readers; a new ``v`` is refused, since it may change what known fields mean.
    """

    topic: ClassVar[str]
    """The topic noun this message travels on (``features``, ``labels``, ...)."""
    numeric: ClassVar[tuple[str, ...]] = ()
    """Fields that may hold floats, checked to be finite by :meth:`encode`."""

    v: Literal[1] = SCHEMA_VERSION

    def encode(self) -> bytes:
        """The message as compact JSON bytes; :class:`BadMessage` if it holds NaN or Infinity."""
        for name in self.numeric:
            _require_finite(name, getattr(self, name))
        return _ENCODER.encode(self)

    def encode_decoded(self) -> bytes:
        """:meth:`encode` without its finiteness check, for a message whose numbers all come from
        messages that :meth:`decode` accepted: the decoder refuses NaN, Infinity and out-of-range
        numbers, so the check could only repeat itself (the monitor encodes one example per event
        from a decoded prediction and label).

        >>> example = Example(event_id="e", ts=1, model="m", features={"x": 0.5}, label=1)
        >>> example.encode_decoded() == example.encode()
        True
        """
        return _ENCODER.encode(self)

    @classmethod
    def decode(
        cls,
        data: bytes,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        default_ts: int | None = None,
    ) -> Self:
        """Parse and validate ``data``; raise :class:`BadMessage` on anything wrong with it.

        ``default_ts`` fills an absent ``ts`` (pass the Kafka record's timestamp).
        """
        if len(data) > max_bytes:
            raise BadMessage("$", f"payload is {len(data)} bytes, over the {max_bytes} byte limit")
        try:
            msg: Self = _decoder(cls).decode(data)
        except UnicodeDecodeError:
            raise _not_utf8(data) or BadMessage("$", "not UTF-8") from None
        except msgspec.ValidationError as exc:
            raise _explain_validation(data, str(exc)) from None
        except msgspec.DecodeError as exc:
            raise _not_utf8(data) or _explain_malformed(data, str(exc)) from None
        except RecursionError:
            raise BadMessage(
                "$", f"nested deeper than the {_DEPTH} levels a parser allows"
            ) from None
        except Exception as exc:  # whatever else a parser may raise is about these bytes too
            raise BadMessage("$", f"cannot be parsed: {type(exc).__name__}: {exc}") from None
        if default_ts is not None and getattr(msg, "ts", 0) is None:
            msg = msgspec.structs.replace(msg, ts=default_ts)
        return msg


EARLIEST_TS = 100_000_000_000
"""1973-03-03 in epoch milliseconds, and the year 5138 in epoch seconds: an event time below it is
seconds (or zero), not the milliseconds driftline's ``ts`` fields hold."""


def _utc(ms: int) -> str:
    """An epoch-millisecond time as ISO 8601 UTC, or the raw number when out of range."""
    import datetime  # noqa: PLC0415 - only a refusal's message needs it

    try:
        moment = datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.UTC)
    except (OverflowError, OSError, ValueError):
        return f"{ms} ms"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class EventTimes:
    """The bounds of a believable event time, checked where a user's record comes in.

    One record with ``ts`` in the year 3000 once moved a partition's join watermark so far that
    most valid events after it expired unjoined, and a ``ts`` in seconds put events in 1970. So a
    ``ts`` must be epoch milliseconds (not below :data:`EARLIEST_TS`) and, unless ``max_skew_ms``
    is 0, within ``max_skew_ms`` of the record's own Kafka timestamp (a backfill of old events
    sets the record timestamp to the event time, as Kafka's event-time tools expect).

    >>> times = EventTimes(max_skew_ms=86_400_000)
    >>> times(1_700_000_000_000, 1_700_000_050_000)
    >>> times(1_700_000_000, 1_700_000_000_000)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    shared.core.errors.BadMessage: ts: 1700000000 is before 1973 in epoch milliseconds: ...
    """

    max_skew_ms: int = 86_400_000

    def all_within(self, stamps: Sequence[int], record_stamps: Sequence[int]) -> bool:
        """Whether every ``ts`` of ``stamps`` passes (with the record timestamps beside them),
        checked a batch at a time; False also when they do not fit 64-bit arrays (then call
        the check per event, for the reasons).

        >>> EventTimes(3_600_000).all_within([1_700_000_000_000], [1_700_000_000_000])
        True
        >>> EventTimes(3_600_000).all_within([1_700_000_000], [1_700_000_000_000])
        False
        """
        try:
            ts = np.asarray(stamps, dtype=np.int64)
            records = np.asarray(record_stamps, dtype=np.int64)
        except OverflowError:
            return False
        if ts.size and int(ts.min()) < EARLIEST_TS:
            return False
        if not self.max_skew_ms:
            return True
        checked = records >= 0
        return not bool((np.abs(ts - records)[checked] > self.max_skew_ms).any())

    def __call__(self, ts: int, record_ts: int) -> None:
        if ts < EARLIEST_TS:
            hint = f"; if it is seconds, send {ts * 1000}" if ts > 0 else ""
            raise BadMessage(
                "ts",
                f"{ts} is before 1973 in epoch milliseconds: it looks like seconds{hint} "
                "(ts is epoch milliseconds; leave it out to use the record's timestamp)",
            )
        if self.max_skew_ms and record_ts >= 0 and abs(ts - record_ts) > self.max_skew_ms:
            apart_h = abs(ts - record_ts) / 3_600_000
            raise BadMessage(
                "ts",
                f"{ts} ({_utc(ts)}) is {apart_h:,.1f} h from its record's timestamp "
                f"({_utc(record_ts)}), more than DRIFTLINE_MAX_EVENT_SKEW_S="
                f"{self.max_skew_ms / 1000:g} allows: when you send old events, set each record's "
                "timestamp to its event time (or raise the limit; 0 turns it off)",
            )


class FeatureEvent(Message, frozen=True, kw_only=True):
    """One event to score, written by users to ``features``, keyed by ``event_id``."""

    topic: ClassVar[str] = "features"
    numeric: ClassVar[tuple[str, ...]] = ("features",)
    event_id: EventId
    ts: Millis | None = None
    features: RawFeatures


class Label(Message, frozen=True, kw_only=True):
    """Ground truth for an event, by users to ``labels`` (often later), keyed by ``event_id``."""

    topic: ClassVar[str] = "labels"
    numeric: ClassVar[tuple[str, ...]] = ("label",)
    event_id: EventId
    ts: Millis | None = None
    label: Target


class Prediction(Message, frozen=True, kw_only=True):
    """A scored event, written by the predictor to ``predictions``, keyed by ``event_id``.

    ``prediction`` is the class or the regression value; ``score`` the positive-class probability
    or decision value of a classifier. ``features`` are the model's features as it saw them (after
    its schema's check; null where missing): a prediction is a complete record of what was decided
    from what, and the monitor reads two topics per event (predictions, labels) instead of three.
    """

    topic: ClassVar[str] = "predictions"
    numeric: ClassVar[tuple[str, ...]] = ("prediction", "score", "latency_ms", "features")
    event_id: EventId
    ts: Millis
    model: Name
    version: Version
    prediction: Target
    score: float | None = None
    latency_ms: Annotated[float, msgspec.Meta(ge=0)]
    features: Features | None = None


class Example(Message, frozen=True, kw_only=True):
    """A prediction joined with its label, by the monitor to ``examples``, for the trainer.

    ``prediction`` and ``version`` are absent on labelled history that no model scored, which a
    user may write to ``examples`` to train a first model from (the trainer's bootstrap).
    """

    topic: ClassVar[str] = "examples"
    numeric: ClassVar[tuple[str, ...]] = ("features", "label", "prediction")
    event_id: EventId
    ts: Millis
    model: Name
    features: Features
    label: Target
    prediction: Target | None = None
    version: Version | None = None


class ExampleBatch(Message, frozen=True, kw_only=True):
    """Examples of one model in one record: the monitor writes one per partition and poll rather
    than one per event, since in kafka-python a send costs far more than the example it carries.
    Read ``examples`` records with :func:`decode_examples`, which takes either form.
    """

    topic: ClassVar[str] = "examples"
    model: Name
    examples: list[Example]

    def encode(self) -> bytes:
        for example in self.examples:
            for name in example.numeric:
                _require_finite(f"examples.{name}", getattr(example, name))
        return _ENCODER.encode(self)


class _ExamplesProbe(msgspec.Struct):
    examples: msgspec.Raw = msgspec.Raw()


def decode_examples(data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> list[Example]:
    """What an ``examples`` record holds: one :class:`Example` (labelled history a user wrote) or
    the examples of an :class:`ExampleBatch` (what the monitor writes).

    >>> one = Example(event_id="e1", ts=1, model="m", features={"examples": 1.0}, label=0)
    >>> [e.event_id for e in decode_examples(one.encode())]
    ['e1']
    >>> [e.event_id for e in decode_examples(ExampleBatch(model="m", examples=[one, one]).encode())]
    ['e1', 'e1']
    """
    if len(data) > max_bytes:
        raise BadMessage("$", f"payload is {len(data)} bytes, over the {max_bytes} byte limit")
    try:
        batched = len(msgspec.json.decode(data, type=_ExamplesProbe).examples) > 0
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):  # ValidationError too
        batched = False  # Example.decode says what is wrong with it
    if batched:
        return ExampleBatch.decode(data, max_bytes=max_bytes).examples
    return [Example.decode(data, max_bytes=max_bytes)]


class DriftAlert(Message, frozen=True, kw_only=True):
    """An alert with its evidence, written by the monitor to ``alerts``, keyed by model name."""

    topic: ClassVar[str] = "alerts"
    numeric: ClassVar[tuple[str, ...]] = ("statistic", "threshold")
    alert_id: Name
    ts: Millis
    model: Name
    version: Version
    kind: AlertKind
    state: Literal["firing", "resolved"] = "firing"
    detector: Name
    feature: str | None = None
    statistic: float
    threshold: float
    window: Annotated[int, msgspec.Meta(ge=0)]
    severity: Severity
    message: str


class RetrainRequest(Message, frozen=True, kw_only=True):
    """A request to retrain a model, by the monitor or the CLI, to ``retrain``, keyed by model name.

    ``since_ts`` (event time, ms) asks for training on data at or after the change only.
    """

    topic: ClassVar[str] = "retrain"
    request_id: Name
    ts: Millis
    model: Name
    reason: str
    since_ts: Millis | None = None


class ModelEvent(Message, frozen=True, kw_only=True):
    """A registry change, by the trainer or the CLI to ``model-events``, keyed by model name."""

    topic: ClassVar[str] = "model-events"
    numeric: ClassVar[tuple[str, ...]] = ("metrics",)
    ts: Millis
    model: Name
    version: Version
    event: ModelEventKind
    metrics: dict[str, float] = {}
    reason: str | None = None


class DeadLetter(Message, frozen=True, kw_only=True):
    """A message that could not be processed, with why and where it came from, on ``dlq``.

    ``payload`` is the original value, base64-encoded. An original over ``PAYLOAD_MAX`` bytes is
    kept as its first ``PAYLOAD_MAX`` bytes, with its length and sha256, so that the dead letter
    always fits in a Kafka record; the source topic, partition and offset point at the whole.
    """

    topic: ClassVar[str] = "dlq"
    ts: Millis
    service: Name
    source_topic: Name
    partition: Annotated[int, msgspec.Meta(ge=0)]
    offset: Annotated[int, msgspec.Meta(ge=0)]
    error: str
    payload: str
    payload_bytes: int | None = None
    """The original's length, when ``payload`` holds only its first bytes."""
    payload_sha256: str | None = None
    """The original's sha256 (hex), when ``payload`` holds only its first bytes."""

    PAYLOAD_MAX: ClassVar[int] = 256 * 1024
    ERROR_MAX: ClassVar[int] = 4_096

    @classmethod
    def of(
        cls,
        *,
        ts: int,
        service: str,
        source_topic: str,
        partition: int,
        offset: int,
        error: str,
        original: bytes,
    ) -> DeadLetter:
        """A dead letter for ``original`` that fits a record, whatever its size and error.

        >>> letter = DeadLetter.of(ts=1, service="s", source_topic="t", partition=0, offset=7,
        ...                        error="x" * 10_000, original=b"a" * 300_000)
        >>> len(letter.original), letter.payload_bytes, len(letter.error) <= DeadLetter.ERROR_MAX
        (262144, 300000, True)
        """
        whole = len(original) <= cls.PAYLOAD_MAX
        if len(error) > cls.ERROR_MAX:
            error = error[: cls.ERROR_MAX - 40] + f"... ({len(error):,} characters in all)"
        return cls(
            ts=ts,
            service=service,
            source_topic=source_topic,
            partition=partition,
            offset=offset,
            error=error,
            payload=base64.b64encode(original[: cls.PAYLOAD_MAX]).decode("ascii"),
            payload_bytes=None if whole else len(original),
            payload_sha256=None if whole else hashlib.sha256(original).hexdigest(),
        )

    @property
    def original(self) -> bytes:
        """The original payload bytes (its first ``PAYLOAD_MAX`` when ``payload_bytes`` is set)."""
        return base64.b64decode(self.payload)


MESSAGE_TYPES: tuple[type[Message], ...] = (
    FeatureEvent,
    Label,
    Prediction,
    Example,
    ExampleBatch,
    DriftAlert,
    RetrainRequest,
    ModelEvent,
    DeadLetter,
)

_ENCODER = msgspec.json.Encoder()


@cache
def _decoder(cls: type[Message]) -> msgspec.json.Decoder[Any]:
    return msgspec.json.Decoder(cls)


def _require_finite(path: str, value: object) -> None:
    """:class:`BadMessage` naming the first NaN or infinity in a float or a dict's float values.

    >>> _require_finite("features", {"a": 1.0, "b": float("nan")})
    Traceback (most recent call last):
    ...
    shared.core.errors.BadMessage: features.b: must be a finite number, got nan
    >>> _require_finite("features", {"a": 1e308, "b": 1e308})  # the sum overflows; no value is
    """
    if type(value) is float:
        if not math.isfinite(value):
            raise BadMessage(path, f"must be a finite number, got {value}")
    elif type(value) is dict:
        # Every prediction and example carries its features: one C-level sum is the fast check
        # (NaN or infinity in any value makes it non-finite); the loop below only runs to find the
        # culprit, or to clear finite values whose sum overflowed.
        try:
            if math.isfinite(sum(value.values())):
                return
        except TypeError:  # a non-number among the values: check the floats one by one
            pass
        for key, item in value.items():
            if type(item) is float and not math.isfinite(item):
                raise BadMessage(f"{path}.{key}", f"must be a finite number, got {item}")


def _not_utf8(data: bytes) -> BadMessage | None:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return BadMessage("$", f"not UTF-8: byte {exc.start} is invalid")
    return None


def _explain_malformed(data: bytes, detail: str) -> BadMessage:
    """Say why msgspec found the bytes malformed, naming NaN/Infinity, which JSON does not allow."""
    found = _BYTE_POSITION.search(detail)
    if found:
        position = int(found.group(1))
        for token in _NON_FINITE_TOKENS:
            if data.startswith(token, position) or data.startswith(token, max(position - 1, 0)):
                return BadMessage("$", f"NaN and Infinity are not valid JSON (byte {position})")
    return BadMessage("$", f"invalid JSON: {detail}")


def _explain_validation(data: bytes, detail: str) -> BadMessage:
    """Turn msgspec's ``reason - at `$.a.b``` into a BadMessage naming the field.

    msgspec names a dict entry only as ``$.features[...]``; a second, slower pass with the standard
    json module (only on this error path) finds which key it was.
    """
    parsed = _MSGSPEC_PATH.match(detail)
    reason = parsed.group("reason") if parsed else detail
    path = (parsed.group("path") if parsed else None) or "$"
    if path == "$":
        if reason.startswith("Expected `object`"):
            return BadMessage(
                "$", f"expected a JSON object, got {reason.split('got ')[-1].strip('`')}"
            )
        if reason.startswith("Object missing required field"):
            name = reason.split("`")[1]
            return BadMessage(name, "required field is missing")
        return BadMessage("$", reason)
    field = path.removeprefix("$.")
    if parsed and parsed.group("key"):
        return BadMessage(field, f"every key must be a non-empty string ({_plain(reason)})")
    if field == "v":
        version = reason.removeprefix("Invalid enum value ").strip()
        return BadMessage(
            "v", f"unsupported schema version {version}; this driftline reads v={SCHEMA_VERSION}"
        )
    if field.endswith("[...]"):
        located = _locate_dict_entry(data, field.removesuffix("[...]"))
        if located is not None:
            return located
    if reason == "Number out of range":
        return BadMessage(field, "number out of range (NaN and Infinity are not allowed)")
    return BadMessage(field, _plain(reason))


def _locate_dict_entry(data: bytes, field: str) -> BadMessage | None:
    try:
        node: Any = json.loads(data)
        for part in field.split("."):
            node = node[part]
    except (ValueError, KeyError, TypeError, RecursionError):
        return None
    if not isinstance(node, dict):
        return None
    for key, value in node.items():
        if not key:
            return BadMessage(f"{field}.", "feature names must not be empty")
        if isinstance(value, bool) or not isinstance(value, int | float):
            return BadMessage(f"{field}.{key}", f"expected a number, got {_json_type(value)}")
        if isinstance(value, float) and not math.isfinite(value):
            return BadMessage(
                f"{field}.{key}", "must be a finite number (NaN and Infinity are not allowed)"
            )
    return None


def _json_type(value: object) -> str:
    names = {bool: "bool", str: "str", list: "array", dict: "object", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _plain(reason: str) -> str:
    """msgspec's reason without backquotes: 'Expected `int`' -> 'expected int'."""
    text = reason.replace("`", "")
    return text[:1].lower() + text[1:]
