"""The monitor as users run it: a real `driftline monitor` process on a real broker and Redis,
fed seeded synthetic streams with late, out-of-order labels."""

from __future__ import annotations

import json
import pickle
import shutil
import subprocess
import threading
from dataclasses import replace
from pathlib import Path

import pytest
from kafka import KafkaProducer
from sklearn import metrics as sk

from services.cli.demo.synthetic import Scenario
from services.monitor.state import MonitorStateStore
from shared.core.errors import ConfigError
from shared.core.messages import DeadLetter
from shared.io.kafka import key_partition
from tests.harness.gadgets import GADGETS
from tests.harness.monitor import (
    distinct_alerts,
    examples,
    messages,
    produce,
    register_model,
    score,
    start_monitor,
    wait_joined,
)
from tests.harness.predictor import Deployment, read_all, send_raw

pytestmark = pytest.mark.integration

FLIP_AT = 20_000
MAX_LABEL_DELAY = 500
"""Events a label may come after its event (``produce``'s default)."""
DETECTION_BOUND = 300
"""Events from the flip to the alert's time. Measured: 62, 76 and 86 with ADWIN checking every
event on this stream (error 0.1 -> 0.9), the alert stamped with the latest event time learned (30
to 60 when it carried the time of the label that tipped the detector); the bound leaves room for
the labels' random delay of up to 500 events, which reorders the error stream around the flip."""


def test_concept_flip_raises_one_alert_and_one_retrain_request(deployment: Deployment) -> None:
    scenario = Scenario(drift="sudden", at=FLIP_AT)
    version, serving = register_model(deployment, scenario)
    scored = score(scenario, FLIP_AT + 4_000, serving)
    monitor = start_monitor(deployment)
    produce(deployment, scored, rate=3_000)
    final = wait_joined(deployment, monitor, len(scored.events))

    # What a user sees while it runs: the status (from the live monitor) and the alerts.
    shown = json.loads(_cli(deployment, "status", "--model", deployment.model, "--json"))
    [entry] = shown["models"]
    assert entry["active_version"] == version
    assert entry["monitors"][0]["join"]["joined"] == len(scored.events)
    assert entry["monitors"][0]["kafka_client"] == "confluent"  # the default, said by the monitor
    assert entry["monitors"][0]["versions"][0]["metrics"]["accuracy"] is not None
    assert [a["kind"] for a in entry["recent_alerts"]] == ["concept_drift"]
    listed = _cli(deployment, "alerts", "--model", deployment.model).splitlines()
    assert len(listed) == 1 and "firing   critical" in listed[0] and "concept_drift" in listed[0]
    assert monitor.stop() == 0

    alerts = messages(deployment, "alerts", deployment.model)
    firing = [a for a in alerts if a["state"] == "firing"]
    assert [(a["kind"], a["version"]) for a in firing] == [("concept_drift", version)], alerts
    flip_ts = scored.events[FLIP_AT].ts
    alert = firing[0]
    step = scenario.step_ms
    delay_events = (alert["ts"] - flip_ts) // step
    # An alert carries the latest event time its version has learned, never the time of a late
    # pre-flip label that happened to tip the detector (seen once in CI, when alerts carried that
    # label's time: -320), so it is never dated before the flip it reports.
    assert 0 <= delay_events <= DETECTION_BOUND, alert
    requests = messages(deployment, "retrain", deployment.model)
    assert len(requests) == 1, requests
    # The alert record is a CloudEvent in the Kafka binding's binary mode: attributes in headers.
    [record] = [
        r
        for r in read_all(deployment.bootstrap, deployment.topic("alerts"))
        if json.loads(r.value)["state"] == "firing"
    ]
    headers = dict(record.headers)
    assert headers["ce_specversion"] == b"1.0"
    assert headers["ce_id"] == f"{alert['alert_id']}/firing".encode()
    assert headers["ce_type"] == b"io.driftline.alert.firing"
    assert headers["ce_source"].decode().endswith(f"/monitor/{deployment.model}")
    assert headers["content-type"] == b"application/json"
    # The change is placed within a few label delays of the flip, so the trainer skips the old concept.
    assert abs(requests[0]["since_ts"] - flip_ts) <= MAX_LABEL_DELAY * step, (requests[0], flip_ts)
    assert final["join"]["joined"] == len(scored.events)
    assert final["join"]["expired"] == final["join"]["orphans"] == 0


def _cli(deployment: Deployment, *args: str) -> str:
    done = subprocess.run(
        [shutil.which("driftline") or "driftline", *args],
        env=deployment.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_stationary_stream_stays_quiet(deployment: Deployment) -> None:
    scenario = Scenario(drift="none")
    _, serving = register_model(deployment, scenario)
    scored = score(scenario, 30_000, serving, seed=3)
    monitor = start_monitor(deployment)
    produce(deployment, scored, rate=None)  # as fast as it goes: the monitor drains a backlog
    final = wait_joined(deployment, monitor, len(scored.events))
    assert monitor.stop() == 0
    assert messages(deployment, "alerts", deployment.model) == []
    assert messages(deployment, "retrain", deployment.model) == []
    assert final["join"]["joined"] == 30_000
    # The drift statistics were computed (the quiet is not for lack of looking).
    assert final["versions"][0]["drift"], final


def test_a_backfill_joins_every_event_although_its_labels_come_first(
    deployment: Deployment,
) -> None:
    """Replaying history, every label is on its topic before the predictions are: read as fast as
    they come, labels would pile up past the pending cap and be evicted before their predictions
    arrive. The monitor leaves them in Kafka until the predictions catch up, and joins them all."""
    scenario = Scenario(drift="none", step_ms=100)  # 6,000 events span 10 minutes of event time
    _, serving = register_model(deployment, scenario)
    scored = score(scenario, 6_000, serving, seed=6)
    produce(deployment, scored, rate=None, labels_first=True)
    # About 2,000 events per partition against a cap of 500 pending.
    monitor = start_monitor(deployment, env={"DRIFTLINE_MONITOR_MAX_PENDING": "500"})
    final = wait_joined(deployment, monitor, len(scored.events), timeout_s=60)
    assert monitor.stop() == 0
    assert final["join"]["joined"] == 6_000, final["join"]
    assert final["join"]["evicted"] == 0 and final["join"]["orphans"] == 0, final["join"]


def test_shift_on_two_features_names_exactly_those(deployment: Deployment) -> None:
    scenario = Scenario(drift="covariate", at=10_000, shifted=(2, 7), shift=1.0)
    _, serving = register_model(deployment, scenario)
    scored = score(scenario, 16_000, serving, seed=4)
    monitor = start_monitor(deployment)
    produce(deployment, scored)
    wait_joined(deployment, monitor, len(scored.events))
    assert monitor.stop() == 0
    data_drift = [
        a
        for a in messages(deployment, "alerts", deployment.model)
        if a["kind"] == "data_drift" and a["state"] == "firing"
    ]
    assert sorted(a["feature"] for a in data_drift) == ["x2", "x7"], data_drift
    shift_ts = scored.events[10_000].ts
    assert all(a["ts"] >= shift_ts for a in data_drift), data_drift
    # Each alert ranks what drifts at that moment by effect size: never a feature that did not move.
    for alert in data_drift:
        ranked = alert["message"].rsplit("drifting: ", 1)[1].split(", ")
        assert set(ranked) <= {"x2", "x7"}, alert["message"]
    # One shift, one alert per feature: nothing resolved while the shift lasts.
    assert not [
        a for a in messages(deployment, "alerts", deployment.model) if a["state"] == "resolved"
    ]


# Identical alerts need identical event order into the detectors: a monitor that falls behind
# its stream (a second worker's services on the same 2 cores) joins late labels in other batches,
# and ADWIN, fed another order, found a second change that the other monitor did not.
@pytest.mark.alone
@pytest.mark.timeout(600)  # it may first wait for the test beside it (the longest: about 3 min)
def test_restart_mid_stream_matches_an_uninterrupted_run(deployment: Deployment) -> None:
    """Two monitors (models `...a` and `...b`) read the same stream with labels up to 2,000
    events late and out of order; `b` is SIGKILLed mid-stream and restarted. Both end with the same
    counts and alerts, and with rolling metrics equal to scikit-learn's on the joined pairs."""
    a, b = f"{deployment.model}a", f"{deployment.model}b"
    scenario = Scenario(drift="sudden", at=9_000)
    version, serving = register_model(deployment, scenario, name=a)
    register_model(deployment, scenario, name=b)
    scored = score(scenario, 14_000, serving, seed=5)
    unfeatured = {"event_id": "f0", "ts": 1, "model": a, "version": 1, "prediction": 1}
    bad = [
        ("labels", "junk", b"{not json"),
        ("predictions", "junk", b'{"event_id": 1}'),
        ("predictions", "f0", json.dumps({**unfeatured, "latency_ms": 1.0}).encode()),
    ]
    # Identical alerts need identical event order: on a loaded machine, a partition's records may
    # come more than the default 2 s after the others', and be analysed out of order.
    env = {"DRIFTLINE_MONITOR_METRICS_WINDOW": "100000", "DRIFTLINE_MONITOR_PARTITION_IDLE_S": "30"}
    steady = start_monitor(deployment, model=a, env=env)
    interrupted = start_monitor(deployment, model=b, env=env)
    feed = threading.Thread(
        target=produce,
        args=(deployment, scored),
        kwargs={"models": (a, b), "max_label_delay": 2_000, "rate": 1_000, "extra": bad},
    )
    steady.wait_ready()
    interrupted.wait_ready()
    feed.start()
    mid = wait_joined(deployment, interrupted, 3_000, model=b, settled=False)
    interrupted.kill()  # SIGKILL mid-stream: no goodbye checkpoint
    assert mid["join"]["joined"] < len(scored.events) - 3_000, "the stream was over before the kill"
    restarted = start_monitor(deployment, model=b, env=env)
    final_a = wait_joined(deployment, steady, len(scored.events), model=a)
    final_b = wait_joined(deployment, restarted, len(scored.events), model=b)
    feed.join()
    assert steady.stop() == 0
    assert restarted.stop() == 0

    assert final_a["join"] == final_b["join"]
    assert final_a["join"]["joined"] == len(scored.events)
    assert final_a["join"]["duplicates"] == 0
    alerts_a = [x[:3] for x in distinct_alerts(messages(deployment, "alerts", a))]
    alerts_b = [x[:3] for x in distinct_alerts(messages(deployment, "alerts", b))]
    assert alerts_a == alerts_b
    assert ("concept_drift", None, "firing") in alerts_a
    assert len(messages(deployment, "retrain", a)) == len(messages(deployment, "retrain", b)) == 1

    # Rolling metrics (a window larger than the stream) equal scikit-learn's on the examples.
    joined = {e["event_id"]: e for e in examples(deployment, a)}
    assert len(joined) == len(scored.events)
    y = [e["label"] for e in joined.values()]
    p = [e["prediction"] for e in joined.values()]
    for final in (final_a, final_b):
        got = final["versions"][0]["metrics"]
        assert got["accuracy"] == pytest.approx(sk.accuracy_score(y, p))
        assert got["f1"] == pytest.approx(sk.f1_score(y, p))
        assert got["precision"] == pytest.approx(sk.precision_score(y, p))
    # Bad input was dead-lettered with its reason, once per monitor that read it.
    dead = messages(deployment, "dlq")
    assert {d["source_topic"] for d in dead} == {
        deployment.topic("labels"),
        deployment.topic("predictions"),
    }
    assert [d["error"][:17] for d in dead].count("features: missing") == 1  # a's model, not b's
    assert final["versions"][0]["version"] == version


def test_hostile_labels_are_dead_lettered_and_the_monitor_never_stops(
    deployment: Deployment,
) -> None:
    """Labels that once crash-looped a monitor, ahead of a stream: an invalid one of 850 KB (its
    dead letter was over Kafka's limit), a label of 1 followed by 400 zeros (accepted, it then
    failed every checkpoint), and JSON nested 10,000 deep. Each is dead-lettered with its reason
    in a record that fits; every event of the stream joins; the process runs on and
    checkpoints."""
    scenario = Scenario()
    _, serving = register_model(deployment, scenario)
    scored = score(scenario, 2_000, serving, seed=3)
    monitor = start_monitor(deployment)
    monitor.wait_ready()
    hostile = {
        b"h-850k": (b'{"event_id": 5, "label": 1, "pad": "' + b"x" * 850_000 + b'"}', "event_id"),
        b"h-huge": (b'{"event_id": "h2", "label": 1' + b"0" * 400 + b"}", "label: expected int"),
        b"h-deep": (
            b'{"event_id": "h3", "label": 1, "x": ' + b"[" * 10_000 + b"]" * 10_000 + b"}",
            "nested deeper than",
        ),
        # One label in the year 3000 once moved the partition's watermark: most valid events
        # after it expired unjoined, and expiry stopped scanning for good.
        b"h-3000": (b'{"event_id": "h4", "ts": 32503680000000, "label": 1}', "h from its record"),
        b"h-seconds": (b'{"event_id": "h5", "ts": 1700000000, "label": 1}', "looks like seconds"),
    }
    send_raw(
        deployment.bootstrap,
        deployment.topic("labels"),
        list((key, value) for key, (value, _) in hostile.items()),
    )
    produce(deployment, scored, max_label_delay=200)
    final = wait_joined(deployment, monitor, len(scored.events))
    assert final["join"]["joined"] == len(scored.events)
    records = read_all(deployment.bootstrap, deployment.topic("dlq"), settle_s=1)
    letters = {r.key: DeadLetter.decode(r.value) for r in records}
    assert set(letters) == set(hostile)
    for key, (value, expected) in hostile.items():
        assert expected in letters[key].error, (key, letters[key].error[:300])
        assert letters[key].original == value[: DeadLetter.PAYLOAD_MAX]
    assert letters[b"h-850k"].payload_bytes == len(hostile[b"h-850k"][0])
    assert max(len(r.value) for r in records) < 1_000_000
    assert monitor.proc.poll() is None, monitor.log()  # it never stopped
    assert monitor.stop() == 0  # and its last checkpoint, with everything it read, was written


def test_labels_that_fit_no_class_are_dead_lettered_naming_the_classes(
    deployment: Deployment,
) -> None:
    """Labels for a 0/1 classifier written by other people's code: ``"True"``, ``"yes"``,
    ``true``, ``2.5`` and ``7`` were joined as wrong answers (a false concept-drift alert and a
    retrain). Now each is a dead letter naming the classes; ``"1"`` and ``1.0`` are the classes
    they spell, joined as such and counted."""
    scenario = Scenario()
    _, serving = register_model(deployment, scenario)
    scored = score(scenario, 1_500, serving, seed=5)
    refused = ["True", "yes", True, 2.5, 7]
    events = list(scored.events)
    for i, label in enumerate(refused):
        events[i] = replace(events[i], label=label)
    for i in range(5, 15):
        events[i] = replace(events[i], label=str(events[i].label))
    for i in range(15, 20):
        events[i] = replace(events[i], label=float(events[i].label))
    monitor = start_monitor(deployment)
    monitor.wait_ready()
    produce(deployment, replace(scored, events=events), max_label_delay=100)
    final = wait_joined(deployment, monitor, len(events) - len(refused))
    assert final["join"]["joined"] == len(events) - len(refused)
    assert final["labels_misrouted"] == 0  # kafka-python partitions as the monitor computes
    records = read_all(deployment.bootstrap, deployment.topic("dlq"), settle_s=1)
    assert sorted(r.key.decode() for r in records) == sorted(e.event_id for e in events[:5])
    for letter in (DeadLetter.decode(r.value) for r in records):
        assert "is not a class of the model: expected one of [0, 1]" in letter.error, letter.error
    assert monitor.metric("driftline_monitor_labels_coerced_total") == 15
    joined = examples(deployment)
    assert {type(example["label"]) for example in joined} == {int}
    assert monitor.proc.poll() is None
    assert monitor.stop() == 0


def test_labels_from_librdkafkas_default_partitioner_are_forwarded_and_all_join(
    deployment: Deployment,
) -> None:
    """Labels produced by confluent-kafka with its defaults land on crc32(key) % n, predictions
    on murmur2: only a third joined once, and status said coverage 100%. Now the monitor
    forwards each misrouted label to its event's partition, every event joins exactly once, and a
    data_quality alert names the fix."""
    from confluent_kafka import Producer  # noqa: PLC0415

    scenario = Scenario()
    _, serving = register_model(deployment, scenario)
    scored = score(scenario, 1_500, serving, seed=8)
    monitor = start_monitor(deployment)
    monitor.wait_ready()
    produce(deployment, scored, labels=False)
    other = Producer({"bootstrap.servers": deployment.bootstrap})  # its defaults, as users run it
    delivered: dict[bytes, int] = {}
    for event in scored.events:
        value = json.dumps({"event_id": event.event_id, "ts": event.ts + 1, "label": event.label})
        other.produce(
            deployment.topic("labels"),
            key=event.event_id,
            value=value,
            on_delivery=lambda err, msg: delivered.update({msg.key(): msg.partition()}),
        )
    assert other.flush(30) == 0
    assert len(delivered) == len(scored.events)
    wrong = sum(p != key_partition(key, 3) for key, p in delivered.items())
    assert wrong > len(scored.events) // 3  # crc32 and murmur2 disagree on most keys
    final = wait_joined(deployment, monitor, len(scored.events))
    assert final["join"]["joined"] == len(scored.events)
    assert final["join"]["duplicates"] == 0 and final["labels_misrouted"] == wrong
    assert monitor.metric("driftline_monitor_labels_misrouted_total") == wrong
    assert len(examples(deployment)) == len(scored.events)  # each event once
    quality = [a for a in messages(deployment, "alerts") if a["kind"] == "data_quality"]
    assert len(quality) == 1 and "partitioner=murmur2_random" in quality[0]["message"]
    assert monitor.stop() == 0


def test_the_monitor_never_reads_an_aborted_transaction(deployment: Deployment) -> None:
    """Predictions of an exactly-once predictor's batch that aborted (here: 300 of them, each
    predicting the wrong class) are not predictions: the monitor joins every event once, with the
    prediction that was committed, and counts no duplicate."""
    scenario = Scenario()
    _, serving = register_model(deployment, scenario)
    scored = score(scenario, 1_000, serving, seed=4)
    monitor = start_monitor(deployment)
    monitor.wait_ready()
    aborted = KafkaProducer(
        bootstrap_servers=deployment.bootstrap,
        transactional_id=f"test-aborted-{deployment.model}",
        enable_idempotence=True,
        acks="all",
    )
    aborted.init_transactions()
    aborted.begin_transaction()
    for event, prediction in list(zip(scored.events, scored.predictions, strict=True))[:300]:
        wrong = {
            "event_id": event.event_id,
            "ts": event.ts,
            "model": deployment.model,
            "version": scored.version,
            "prediction": 1 - int(prediction),
            "latency_ms": 1.0,
            "features": event.features,
        }
        aborted.send(
            deployment.topic("predictions"),
            key=event.event_id.encode(),
            value=json.dumps(wrong).encode(),
        )
    aborted.flush()
    aborted.abort_transaction()
    aborted.close()
    produce(deployment, scored, max_label_delay=100)
    final = wait_joined(deployment, monitor, len(scored.events))
    assert final["join"]["joined"] == len(scored.events)
    assert final["join"]["duplicates"] == 0
    joined = {e["event_id"]: e["prediction"] for e in examples(deployment)}
    assert joined == {e.event_id: p for e, p in zip(scored.events, scored.predictions, strict=True)}
    assert monitor.stop() == 0


def test_a_planted_checkpoint_runs_nothing_and_stops_the_monitor_with_the_way_out(
    deployment: Deployment, tmp_path: Path
) -> None:
    """Pickles that run code when unpickled, planted where the monitor keeps its checkpoint
    (numpy's ``runstring`` on partition 0, ``os.system`` on the others and the analytics): none
    may run (checkpoints are msgpack data, never unpickled), and none may be skipped either (the
    monitor would lose or recount events). The monitor exits non-zero naming the fix, and
    ``--reset`` works."""
    scenario = Scenario(drift="none")
    _, serving = register_model(deployment, scenario)
    produce(deployment, score(scenario, 600, serving), rate=None)
    markers = {gadget: tmp_path / gadget.__name__ for gadget in GADGETS}
    numpy_gadget, system_gadget = (pickle.dumps(g(markers[g])) for g in GADGETS)
    keys, client, model = deployment.registry.keys, deployment.registry.client, deployment.model
    client.set(keys.monitor_join(model, 0), numpy_gadget)
    for partition in (1, 2):
        client.set(keys.monitor_join(model, partition), system_gadget)
    client.set(keys.monitor_analytics(model, [0, 1, 2]), system_gadget)

    refused = start_monitor(deployment)
    assert refused.proc.wait(timeout=120) != 0, refused.log()
    last = refused.log().strip().splitlines()[-1]  # what the user reads last: the cause and the fix
    assert last.startswith("driftline: error: the "), refused.log()
    assert "checkpoint (partition 0) in Redis cannot be restored" in last
    assert f"driftline monitor --model {model} --reset" in last
    store = MonitorStateStore(client, keys, model)  # the other keys, read as a monitor reads them
    with pytest.raises(ConfigError, match="--reset"):
        store.load_partition(1)
    with pytest.raises(ConfigError, match="--reset"):
        store.load_analytics([0, 1, 2])
    assert not any(marker.exists() for marker in markers.values())

    afresh = start_monitor(deployment, "--reset")
    assert wait_joined(deployment, afresh, 600)["join"]["joined"] == 600
    assert afresh.stop() == 0
