"""`driftline dlq` and `driftline dlq replay`: read the dead-letter topic, and send chosen dead
letters back to where they came from once their cause is fixed.

A dead letter names its source (topic, partition, offset), the service that refused it and why,
and holds the original value (its first 256 KiB, with the whole one's length and sha256, when it
was larger). Replay prefers the original record itself, read back from its source at that offset
(the exact bytes, key and timestamp); where retention has deleted it, the copy in the dead letter
(keyed by its ``event_id``), unless that copy is only the first bytes of the original. Only
this deployment's own topics are replayed to: a dead letter naming another deployment's topic
(or one whose bytes are not a dead letter at all) is listed as such and never sent anywhere.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import hashlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from services.cli.common import EXIT_OK
from shared.core.errors import BadMessage, ConfigError
from shared.core.messages import DeadLetter
from shared.core.settings import Settings
from shared.core.topics import NOUNS, Topics
from shared.infra.stack import Infra
from shared.io.kafka import Kafka, TopicPartition, kafka_errors, plain_consumer
from shared.io.transport import open_producer

EXIT_NOTHING = 4
"""`dlq replay` chose no dead letter that could be replayed."""
READ_WAIT_S = 5.0


@dataclass(frozen=True)
class Found:
    """One record of the dead-letter topic: where it is, and the dead letter (None: unreadable)."""

    partition: int
    offset: int
    letter: DeadLetter | None
    problem: str = ""

    @property
    def ref(self) -> str:
        """How a person names it: ``PARTITION:OFFSET`` of the dead-letter topic."""
        return f"{self.partition}:{self.offset}"


def add_command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    parents: list[argparse.ArgumentParser],
) -> None:
    filters = argparse.ArgumentParser(add_help=False)
    filters.add_argument("--reason", help="only dead letters whose reason contains this text")
    filters.add_argument(
        "--source", choices=NOUNS, metavar="NOUN", help="only those from this topic (features, ...)"
    )
    filters.add_argument("--service", help="only those refused by this service (predictor, ...)")
    filters.add_argument(
        "--id",
        dest="ids",
        action="append",
        metavar="P:O",
        help="only the dead letter at PARTITION:OFFSET of the dlq (as listed; repeatable)",
    )
    filters.add_argument("--last", type=int, help="only the last N that match")
    filters.add_argument("--json", action="store_true", help="machine-readable output")
    dlq = commands.add_parser(
        "dlq",
        parents=parents,
        help="read the dead-letter topic; `dlq replay` sends chosen ones back once fixed",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = dlq.add_subparsers(dest="action", metavar="ACTION")
    listing = actions.add_parser(
        "list",
        parents=[*parents, filters],
        help="print the dead letters, oldest first (the default action)",
        description="Print each dead letter: when, which service refused it, from where "
        "(topic, partition@offset), why, and the start of the original value. --json prints "
        "one object per line with the whole payload decoded where it is text.",
    )
    listing.set_defaults(run=run_list)
    replay = actions.add_parser(
        "replay",
        parents=[*parents, filters],
        help="send the chosen dead letters back to their source topic",
        description="Send each chosen dead letter's original back to its source topic: the "
        "original record itself when its source still holds it (same bytes, key and timestamp), "
        "else the copy in the dead letter keyed by its event_id. Fix the cause first (a model "
        "version that takes the value, a setting): a record refused for the same reason goes "
        "to the dlq again. Replaying twice sends twice (the monitor and trainer count a second "
        "copy as a duplicate). Exit 4 when nothing chosen could be replayed.",
    )
    replay.add_argument(
        "--dry-run", action="store_true", help="say what would be sent, send nothing"
    )
    replay.set_defaults(run=run_replay)
    dlq.set_defaults(  # `driftline dlq` alone lists them all
        run=run_list, reason=None, source=None, service=None, ids=None, last=None, json=False
    )


def read_dead_letters(kafka_at: Kafka, topic: str) -> Iterator[Found]:
    """Every record of the dead-letter ``topic``, oldest first per partition, decoded."""
    with kafka_errors(f"reading {topic}", kafka_at):
        consumer = plain_consumer(kafka_at)
    try:
        partitions = [
            TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])
        ]
        if not partitions:
            return
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        deadline = time.monotonic() + 60.0
        while any(consumer.position(tp) < ends[tp] for tp in partitions):
            if time.monotonic() > deadline:
                raise ConfigError(f"reading {topic} took over 60 s: is the broker answering?")
            for tp, records in sorted(consumer.poll(timeout_ms=1000).items()):
                for record in records:
                    yield _found(tp.partition, record.offset, record.value)
    finally:
        consumer.close()


def _found(partition: int, offset: int, value: bytes | None) -> Found:
    try:
        return Found(partition, offset, DeadLetter.decode(value or b""))
    except BadMessage as exc:
        return Found(partition, offset, None, f"not a dead letter: {exc}")


def _chosen(settings: Settings, args: argparse.Namespace) -> list[Found]:
    topics = Topics(settings.topic_prefix)
    endpoints = Infra(settings).endpoints()
    wanted_ids = set(args.ids or ())
    source = topics.name(args.source) if args.source else None
    chosen = []
    for found in read_dead_letters(endpoints.kafka, topics.dlq):
        letter = found.letter
        if wanted_ids and found.ref not in wanted_ids:
            continue
        if letter is None:
            if not (args.reason or source or args.service):
                chosen.append(found)
            continue
        if args.reason and args.reason.lower() not in letter.error.lower():
            continue
        if source and letter.source_topic != source:
            continue
        if args.service and letter.service != args.service:
            continue
        chosen.append(found)
    if args.last is not None:
        chosen = chosen[-args.last :]
    return chosen


def _when(ms: int) -> str:
    try:
        moment = dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)
    except (OverflowError, OSError, ValueError):
        return f"{ms} ms"
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _payload(letter: DeadLetter) -> bytes:
    return base64.b64decode(letter.payload)


def _as_json(found: Found) -> dict[str, Any]:
    letter = found.letter
    if letter is None:
        return {"dlq": found.ref, "problem": found.problem}
    raw = _payload(letter)
    try:
        text: str | None = raw.decode()
    except UnicodeDecodeError:
        text = None
    return {
        "dlq": found.ref,
        "ts": letter.ts,
        "time": _when(letter.ts),
        "service": letter.service,
        "source_topic": letter.source_topic,
        "partition": letter.partition,
        "offset": letter.offset,
        "error": letter.error,
        "payload": text,
        "payload_base64": None if text is not None else letter.payload,
        "truncated": letter.payload_bytes is not None,
    }


def _line(found: Found) -> str:
    letter = found.letter
    if letter is None:
        return f"dlq {found.ref:<9} ?                      {found.problem}"
    preview = _payload(letter)[:80].decode(errors="replace").replace("\n", " ")
    cut = " (truncated)" if letter.payload_bytes is not None else ""
    return (
        f"dlq {found.ref:<9} {_when(letter.ts)}  {letter.service:<9} "
        f"{letter.source_topic} {letter.partition}@{letter.offset}: {letter.error}\n"
        f"    {preview}{cut}"
    )


def run_list(settings: Settings, args: argparse.Namespace) -> int:
    chosen = _chosen(settings, args)
    for found in chosen:
        print(json.dumps(_as_json(found)) if args.json else _line(found), flush=True)
    if not args.json:
        print(f"{len(chosen)} dead letter(s)")
    return EXIT_OK


@dataclass(frozen=True)
class Replay:
    """What replaying one dead letter sends (or why it cannot)."""

    found: Found
    topic: str | None = None
    key: bytes | None = None
    value: bytes | None = None
    timestamp_ms: int | None = None
    origin: str = ""
    """``original record`` or ``dead letter copy``."""
    refused: str = ""


def _plan(settings: Settings, kafka_at: Kafka, chosen: list[Found]) -> list[Replay]:
    topics = Topics(settings.topic_prefix)
    ours = {topics.name(noun) for noun in NOUNS} - {topics.dlq}
    plans = []
    consumer = None
    try:
        for found in chosen:
            letter = found.letter
            if letter is None:
                plans.append(Replay(found, refused=found.problem))
                continue
            if letter.source_topic not in ours:
                plans.append(
                    Replay(
                        found,
                        refused=f"{letter.source_topic} is not a topic of this deployment "
                        f"(prefix {settings.topic_prefix!r}): not replayed",
                    )
                )
                continue
            if consumer is None:
                with kafka_errors("reading the originals", kafka_at):
                    consumer = plain_consumer(kafka_at)
            original = _original(consumer, letter)
            if original is not None:
                key, value, stamp = original
                plans.append(
                    Replay(found, letter.source_topic, key, value, stamp, "original record")
                )
                continue
            if letter.payload_bytes is not None:
                plans.append(
                    Replay(
                        found,
                        refused=f"the original ({letter.payload_bytes} bytes) is gone from "
                        f"{letter.source_topic} and the dead letter holds only its first "
                        f"{len(_payload(letter))}: cannot be replayed",
                    )
                )
                continue
            value = _payload(letter)
            plans.append(
                Replay(
                    found, letter.source_topic, _event_key(value), value, None, "dead letter copy"
                )
            )
    finally:
        if consumer is not None:
            consumer.close()
    return plans


def _original(consumer: Any, letter: DeadLetter) -> tuple[bytes | None, bytes, int] | None:
    """The source record at the dead letter's offset, when its bytes are the ones refused."""
    tp = TopicPartition(letter.source_topic, letter.partition)
    consumer.assign([tp])
    start = consumer.beginning_offsets([tp]).get(tp, 0)
    end = consumer.end_offsets([tp]).get(tp, 0)
    if not start <= letter.offset < end:
        return None
    consumer.seek(tp, letter.offset)
    deadline = time.monotonic() + READ_WAIT_S
    while time.monotonic() < deadline:
        for record in consumer.poll(timeout_ms=500, max_records=1).get(tp, []):
            if record.offset != letter.offset:
                return None  # compacted or transaction markers: not the one refused
            value = record.value or b""
            same = (
                value == _payload(letter)
                if letter.payload_bytes is None
                else hashlib.sha256(value).hexdigest() == letter.payload_sha256
            )
            return (record.key, value, record.timestamp) if same else None
    return None


def _event_key(value: bytes) -> bytes | None:
    """The ``event_id`` of a JSON object, as driftline keys its topics (None when it has none)."""
    try:
        found = json.loads(value)
    except (ValueError, RecursionError):
        return None
    event_id = found.get("event_id") if isinstance(found, dict) else None
    return event_id.encode() if isinstance(event_id, str) and event_id else None


def run_replay(settings: Settings, args: argparse.Namespace) -> int:
    chosen = _chosen(settings, args)
    endpoints = Infra(settings).endpoints()
    plans = _plan(settings, endpoints.kafka, chosen)
    ready = [plan for plan in plans if not plan.refused]
    if ready and not args.dry_run:
        producer = open_producer(settings.kafka_client, endpoints.kafka, client_id="driftline-dlq")
        try:
            for plan in ready:
                if plan.topic is None or plan.value is None:  # refused plans are not ready
                    continue
                producer.send(plan.topic, plan.value, plan.key, timestamp_ms=plan.timestamp_ms)
            flushed = producer.flush(30.0)
            if flushed.pending:
                raise ConfigError(
                    f"{flushed.pending} replayed record(s) were not acknowledged in 30 s: check "
                    "the broker (`driftline infra status`), then replay again (the monitor and "
                    "trainer count a second copy once)"
                )
        finally:
            producer.close()
    for plan in plans:
        if args.json:
            print(json.dumps(_replay_json(plan, args.dry_run)), flush=True)
        elif plan.refused:
            print(f"dlq {plan.found.ref:<9} skipped: {plan.refused}")
        else:
            verb = "would send" if args.dry_run else "sent"
            print(f"dlq {plan.found.ref:<9} {verb} to {plan.topic} ({plan.origin})")
    if not args.json:
        verb = "would replay" if args.dry_run else "replayed"
        print(f"{verb} {len(ready)} of {len(plans)} chosen dead letter(s)")
    return EXIT_OK if ready else EXIT_NOTHING


def _replay_json(plan: Replay, dry_run: bool) -> dict[str, Any]:
    if plan.refused:
        return {"dlq": plan.found.ref, "replayed": False, "reason": plan.refused}
    return {
        "dlq": plan.found.ref,
        "replayed": not dry_run,
        "topic": plan.topic,
        "key": plan.key.decode(errors="replace") if plan.key is not None else None,
        "from": plan.origin,
    }
