"""The predictor as users run it: real processes, real broker and Redis, real signals."""

from __future__ import annotations

import hashlib
import json
import pickle
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from shared.core.messages import DeadLetter, DriftAlert
from tests.harness.predictor import (
    Deployment,
    Stream,
    read_all,
    send_raw,
    unsigned,
    versions_never_go_backwards,
    wait_for_predictions,
)

pytestmark = pytest.mark.integration


def _alerts(deployment: Deployment) -> list[DriftAlert]:
    return [
        DriftAlert.decode(r.value)
        for r in read_all(deployment.bootstrap, deployment.topic("alerts"))
    ]


def test_10k_events_with_a_promotion_halfway(deployment: Deployment) -> None:
    v1 = deployment.register(seed=1)
    v2 = deployment.register(seed=2)
    deployment.registry.promote(deployment.model, v1)
    predictor = deployment.start_predictor()
    predictor.wait_ready()

    stream = Stream(deployment, 10_000, rate=2_500).start()
    stream.wait_sent(5_000)
    deployment.registry.promote(deployment.model, v2)
    stream.join()
    found = wait_for_predictions(deployment, stream.ids)

    assert set(found) == set(stream.ids)  # every event has a prediction
    assert read_all(deployment.bootstrap, deployment.topic("dlq")) == []  # none failed
    assert versions_never_go_backwards(found)
    versions = {version for entries in found.values() for version, _, _ in entries}
    assert versions == {v1, v2}
    assert found[stream.ids[-1]][-1][0] == v2  # the end of the stream is served by v2
    assert predictor.metric("driftline_predictor_model_swaps_total") == 1
    assert predictor.stop() == 0  # SIGTERM: finish the batch, commit, exit 0


def test_tampered_and_unsigned_artifacts_are_refused(
    deployment: Deployment, tmp_path: Path
) -> None:
    good = deployment.register(seed=1)
    deployment.registry.promote(deployment.model, good)
    predictor = deployment.start_predictor()
    predictor.wait_ready()

    # One flipped byte in a signed artifact, stored straight into Redis.
    tampered = deployment.register(seed=2)
    key = deployment.registry.keys.version(deployment.model, tampered)
    artifact = bytearray(deployment.registry.artifact(deployment.model, tampered))
    artifact[len(artifact) // 2] ^= 0x01
    deployment.registry._redis.hset(key, "artifact", bytes(artifact))

    # An unsigned pickle whose loading would create a marker file.
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_Marker(str(marker)))
    evil = deployment.register(unsigned(deployment.candidate(seed=3), payload))

    for version in (tampered, evil):
        deployment.registry.promote(deployment.model, version)
        _wait(
            lambda v=version: any(a.version == v for a in _alerts(deployment)),
            f"an alert for v{version}",
        )

    send_raw(
        deployment.bootstrap,
        deployment.features_topic,
        [(b"x1", b'{"event_id": "x1", "features": {"a": 1, "b": 2, "c": 3}}')],
    )
    found = wait_for_predictions(deployment, ["x1"])
    assert found["x1"][0][0] == good  # the old model keeps serving
    assert not marker.exists()  # the pickle never ran
    alerts = {a.version: a for a in _alerts(deployment) if a.kind == "model_load"}
    assert "sha256 mismatch" in alerts[tampered].message
    assert "unsigned" in alerts[evil].message
    assert alerts[evil].severity == "critical"
    assert predictor.metric("driftline_predictor_model_load_failures_total") == 2
    status, body = predictor.get("/readyz")
    assert status == 200 and f"v{good}" in body
    assert predictor.stop() == 0


class _Marker:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[Path, str]]:
        return (Path.write_text, (Path(self.path), "pwned"))


def test_sigkill_mid_stream_then_restart_loses_nothing(deployment: Deployment) -> None:
    deployment.registry.promote(deployment.model, deployment.register(seed=1))
    first = deployment.start_predictor()
    first.wait_ready()
    stream = Stream(deployment, 6_000, rate=2_000).start()
    stream.wait_sent(2_500)
    first.kill()  # SIGKILL: no goodbye, no commit of the batch in hand
    second = deployment.start_predictor()
    stream.join()
    found = wait_for_predictions(deployment, stream.ids)
    assert set(found) == set(stream.ids)
    assert second.stop() == 0


CRASH = {"DRIFTLINE_FAULT_CRASH_AFTER_BATCHES": "5"}
"""Die with the 5th batch's outputs sent and its offsets not committed: the worst moment."""


def test_crash_between_send_and_commit_duplicates_but_never_loses(deployment: Deployment) -> None:
    deployment.registry.promote(deployment.model, deployment.register(seed=1))
    first = deployment.start_predictor(env=CRASH)
    first.wait_ready()
    stream = Stream(deployment, 6_000, rate=2_000).start()
    assert first.proc.wait(timeout=120) == -signal.SIGKILL
    assert "fault injection: SIGKILL after batch 5" in first.log()
    second = deployment.start_predictor()
    stream.join()
    found = wait_for_predictions(deployment, stream.ids)
    assert set(found) == set(stream.ids)  # at-least-once: nothing lost...
    assert (
        sum(len(entries) > 1 for entries in found.values()) > 0
    )  # ...the crashed batch is rescored
    assert second.stop() == 0


def test_exactly_once_gives_one_prediction_per_event_to_read_committed_readers(
    deployment: Deployment,
) -> None:
    deployment.registry.promote(deployment.model, deployment.register(seed=1))
    args = ("--exactly-once", "--instance-id", "eos-test")
    first = deployment.start_predictor(*args, env=CRASH)
    first.wait_ready()
    stream = Stream(deployment, 6_000, rate=2_000).start()
    # The same crash as the test above, inside an open transaction: the restart with the same
    # transactional id aborts it, so read_committed readers never see its predictions.
    assert first.proc.wait(timeout=120) == -signal.SIGKILL
    assert "fault injection: SIGKILL after batch 5" in first.log()
    second = deployment.start_predictor(*args)
    stream.join()
    found = wait_for_predictions(deployment, stream.ids, committed_only=True)
    duplicates = {event_id: entries for event_id, entries in found.items() if len(entries) > 1}
    assert set(found) == set(stream.ids)
    assert duplicates == {}
    assert second.stop() == 0


def test_bad_events_go_to_the_dead_letter_topic_and_nothing_else_is_lost(
    deployment: Deployment,
) -> None:
    deployment.registry.promote(deployment.model, deployment.register(seed=1))
    predictor = deployment.start_predictor(env={"DRIFTLINE_MAX_MESSAGE_BYTES": "2000"})
    predictor.wait_ready()
    bad: dict[bytes, tuple[bytes | None, str]] = {
        b"b-json": (b"{not json", "$: invalid JSON"),
        b"b-utf8": (b'{"event_id": "\xff", "features": {}}', "$: not UTF-8"),
        b"b-array": (b"[1, 2, 3]", "$: expected a JSON object"),
        b"b-noid": (
            b'{"features": {"a": 1, "b": 2, "c": 3}}',
            "event_id: required field is missing",
        ),
        b"b-type": (
            b'{"event_id": "t", "features": {"a": "x", "b": 2, "c": 3}}',
            "features.a: expected a number",
        ),
        b"b-nan": (
            b'{"event_id": "n", "features": {"a": NaN, "b": 2, "c": 3}}',
            "NaN and Infinity",
        ),
        b"b-value-array": (
            b'{"event_id": "r", "features": {"a": [1], "b": 2, "c": 3}}',
            "got an array",
        ),
        b"b-big": (
            b'{"event_id": "g", "features": {"a": 1}, "pad": "' + b"x" * 3000 + b'"}',
            "over the 2000 byte limit",
        ),
        b"b-version": (
            b'{"v": 9, "event_id": "w", "features": {"a": 1, "b": 2, "c": 3}}',
            "unsupported schema version 9",
        ),
        b"b-tomb": (None, "tombstone"),
    }
    rng = np.random.default_rng(5)
    # Valid: a feature left out is missing (the model imputes it), an extra one of any type unused.
    generated = [f"g{i}" for i in range(300)]
    good_ids = ["m", "x", *generated]
    items: list[tuple[bytes | None, bytes | None]] = [
        (b"m", b'{"event_id": "m", "features": {"a": 1, "b": 2}}'),
        (b"x", b'{"event_id": "x", "features": {"a": 1, "b": 2, "c": 3, "d": {"e": ["f"]}}}'),
    ]
    bad_items = list(bad.items())
    for index, event_id in enumerate(generated):
        values = rng.normal(size=3).tolist()
        features = dict(zip("abc", values, strict=True))
        items.append(
            (event_id.encode(), json.dumps({"event_id": event_id, "features": features}).encode())
        )
        if index % 30 == 0 and bad_items:  # bad events interleaved with good ones
            key, (value, _) = bad_items.pop()
            items.append((key, value))
    send_raw(deployment.bootstrap, deployment.features_topic, items)

    found = wait_for_predictions(deployment, good_ids)
    assert set(found) == set(good_ids)
    _wait(
        lambda: len(read_all(deployment.bootstrap, deployment.topic("dlq"))) >= len(bad),
        "dead letters",
    )
    letters = {
        r.key: DeadLetter.decode(r.value)
        for r in read_all(deployment.bootstrap, deployment.topic("dlq"), settle_s=2)
    }
    assert set(letters) == set(bad)  # exactly the bad events, each once
    for key, (value, expected) in bad.items():
        assert expected in letters[key].error, (key, letters[key].error)
        assert letters[key].original == (value or b"")
        assert letters[key].source_topic == deployment.features_topic
    assert predictor.metric("driftline_predictor_dead_letters_total") == len(bad)
    assert predictor.stop() == 0


def test_hostile_records_are_dead_lettered_and_the_predictor_never_stops(
    deployment: Deployment,
) -> None:
    """Records that once crash-looped a predictor: an invalid event of 850 KB (its dead letter
    was over Kafka's limit), a valid event whose prediction would be over it, and JSON nested
    10,000 deep in a feature value and in an unknown field; and event times no one means (the
    year 3000, seconds for milliseconds). Each is dead-lettered with its
    reason, in a record that fits; every valid event around them is predicted; the process runs
    on."""
    deployment.registry.promote(deployment.model, deployment.register(seed=1))
    predictor = deployment.start_predictor()
    predictor.wait_ready()
    wide = {f"f{i:05d}": 1 for i in range(93_600)}
    deep = b"[" * 10_000 + b"]" * 10_000
    hostile: dict[bytes, tuple[bytes, str]] = {
        b"h-850k": (
            b'{"event_id": "h1", "features": {"a": "' + b"x" * 850_000 + b'", "b": 1, "c": 2}}',
            "features.a: expected a number",
        ),
        b"h-deep-value": (
            b'{"event_id": "h3", "features": {"a": ' + deep + b', "b": 1, "c": 2}}',
            "nested deeper than",
        ),
        b"h-deep-extra": (
            b'{"event_id": "h4", "features": {"a": 1, "b": 2, "c": 3}, "x": ' + deep + b"}",
            "nested deeper than",
        ),
        b"h-year-3000": (
            b'{"event_id": "h5", "ts": 32503680000000, "features": {"a": 1, "b": 2, "c": 3}}',
            "ts: 32503680000000 (3000-01-01T00:00:00Z) is ",
        ),
        b"h-seconds": (
            b'{"event_id": "h6", "ts": 1700000000, "features": {"a": 1, "b": 2, "c": 3}}',
            "looks like seconds; if it is seconds, send 1700000000000",
        ),
    }
    # 93,600 extra features: valid (under the decode limit), scored, and left out of the prediction.
    wide_event = json.dumps(
        {"event_id": "h2", "features": {"a": 1, "b": 2, "c": 3, **wide}}, separators=(",", ":")
    ).encode()
    assert len(wide_event) < 1 << 20
    rng = np.random.default_rng(6)
    good_ids = [f"g{i}" for i in range(200)]
    items: list[tuple[bytes | None, bytes | None]] = [(b"h-wide", wide_event)]
    waiting = list(hostile.items())
    for index, event_id in enumerate(good_ids):
        features = dict(zip("abc", rng.normal(size=3).tolist(), strict=True))
        items.append(
            (event_id.encode(), json.dumps({"event_id": event_id, "features": features}).encode())
        )
        if index % 30 == 0 and waiting:
            key, (value, _) = waiting.pop()
            items.append((key, value))
    send_raw(deployment.bootstrap, deployment.features_topic, items)
    good_ids.append("h2")

    try:
        found = wait_for_predictions(deployment, good_ids)
    except AssertionError:
        print(predictor.log()[-5000:])
        raise
    assert set(found) == set(good_ids)
    _wait(
        lambda: len(read_all(deployment.bootstrap, deployment.topic("dlq"))) >= len(hostile),
        "dead letters",
    )
    records = read_all(deployment.bootstrap, deployment.topic("dlq"), settle_s=2)
    letters = {r.key: DeadLetter.decode(r.value) for r in records}
    assert set(letters) == set(hostile)
    for key, (value, expected) in hostile.items():
        letter = letters[key]
        assert expected in letter.error, (key, letter.error[:300])
        if len(value) > DeadLetter.PAYLOAD_MAX:  # a prefix, its length and its hash
            assert letter.original == value[: DeadLetter.PAYLOAD_MAX]
            assert letter.payload_bytes == len(value)
            assert letter.payload_sha256 == hashlib.sha256(value).hexdigest()
        else:
            assert letter.original == value and letter.payload_bytes is None
    assert max(len(r.value) for r in records) < 1_000_000
    assert predictor.proc.poll() is None, predictor.log()  # it never stopped
    assert predictor.metric("driftline_predictor_dead_letters_total") == len(hostile)
    assert predictor.stop() == 0


def test_two_predictors_share_partitions_and_survive_one_killed(deployment: Deployment) -> None:
    deployment.registry.promote(deployment.model, deployment.register(seed=1))
    first, second = deployment.start_predictor(), deployment.start_predictor()
    try:
        first.wait_ready()
        # Ready means it owns partitions, so the three are shared. A join may wait out one
        # rebalance timeout (30 s) for a member that is slow to rejoin.
        second.wait_ready(timeout_s=120)
        first.wait_ready(timeout_s=120)
    except AssertionError:
        print("FIRST:\n" + first.log() + "\nSECOND:\n" + second.log())
        raise
    stream = Stream(deployment, 8_000, rate=1_000).start()
    stream.wait_sent(2_000)
    first.kill()
    stream.join()
    found = wait_for_predictions(deployment, stream.ids, timeout_s=180)
    assert set(found) == set(stream.ids)
    assert "partitions assigned" in second.log()
    assert second.stop() == 0


def _wait(condition: object, what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"no {what} within {timeout_s} s"
        time.sleep(0.5)


def test_a_predictor_of_a_misspelt_model_says_so_at_once_and_waits(deployment: Deployment) -> None:
    deployment.registry.promote(deployment.model, deployment.register(seed=1))
    typo = deployment.model[:-1] + "x"
    predictor = deployment.start("predictor", "--model", typo)
    deadline = time.monotonic() + 60
    while f"did you mean {deployment.model!r}?" not in predictor.log():
        assert predictor.proc.poll() is None, predictor.log()
        assert time.monotonic() < deadline, predictor.log()
        time.sleep(0.2)
    status, body = predictor.get("/readyz")
    assert status == 503, body  # it waits for a first version of the name it was given
    assert predictor.stop() == 0
