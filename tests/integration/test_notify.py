"""`driftline notify` against a real broker, a real Redis, real HTTP endpoints and a real
Alertmanager: a burst of alerts from one cause is one incident; each change reaches each route
once across a failing first attempt, a SIGKILL and a re-read of every alert record; a failing
endpoint holds up nobody else and dead-letters what it could not take; Alertmanager hears of a
firing and then of a resolved alert."""

from __future__ import annotations

import hashlib
import hmac
import json
import shutil
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from services.cli.demo.synthetic import Scenario
from shared.core.errors import KafkaError
from shared.core.messages import DeadLetter, DriftAlert
from shared.io.transport import TP, open_consumer
from tests.harness.alertmanager import ALERTMANAGER, alertmanager
from tests.harness.monitor import produce, register_model, score, start_monitor, wait_joined
from tests.harness.predictor import Deployment, ServiceProcess, read_all, run_cli, send_raw
from tests.harness.receiver import Received, receiving

pytestmark = pytest.mark.integration

SECRET = "s3cret-for-the-test"  # noqa: S105 (the test signs with it)
FEATURES = [f"f{n}" for n in range(10)]
FAST = {
    "DRIFTLINE_NOTIFY_GROUP_WAIT_S": "2",
    "DRIFTLINE_NOTIFY_GROUP_INTERVAL_S": "1",
    "DRIFTLINE_NOTIFY_WEBHOOK_SECRET": SECRET,
}


def _alert(model: str, n: int, kind: str, feature: str | None, state: str = "firing") -> bytes:
    return DriftAlert(
        alert_id=f"{model}-a{n}",
        ts=1_700_000_000_000 + n,
        model=model,
        version=1,
        kind=kind,  # type: ignore[arg-type]
        state=state,  # type: ignore[arg-type]
        detector="psi" if kind == "data_drift" else "adwin",
        feature=feature,
        statistic=0.5 if state == "firing" else 0.01,
        threshold=0.2,
        window=500,
        severity="warning" if kind == "data_drift" else "critical",
        message=f"{kind} {feature or ''} {state}",
    ).encode()


def _burst(model: str, state: str = "firing") -> list[tuple[bytes | None, bytes | None]]:
    """What one upstream change raises: ten features drift, then the predictions, then the error."""
    alerts = [_alert(model, n, "data_drift", f, state) for n, f in enumerate(FEATURES)]
    alerts.append(_alert(model, 10, "prediction_drift", None, state))
    alerts.append(_alert(model, 11, "concept_drift", None, state))
    return [(model.encode(), a) for a in alerts]


HOSTILE: list[tuple[bytes | None, bytes | None]] = [
    (b"x", b"[" * 5_000 + b"]" * 5_000),  # deeply nested
    (b"x", json.dumps({"alert_id": "z", "ts": "soon"}).encode()),  # wrong types
    (b"x", b'{"message": "' + b"x" * 900_000 + b'"'),  # huge, and cut short
    (
        b"x",
        b'{"v":1,"alert_id":"far","ts":99999999999999999,"model":"other","version":1,'
        b'"kind":"data_drift","detector":"psi","statistic":1,"threshold":0,"window":1,'
        b'"severity":"info","message":"from the year 3 million"}',
    ),  # far-off time: decodes
]


def _changes(received: list[Received]) -> Counter[str]:
    """How often each change (ALERT_ID/STATE) reached a webhook, one count per Idempotency-Key."""
    seen: dict[str, Received] = {}
    for r in received:
        seen.setdefault(r.headers["Idempotency-Key"], r)
    return Counter(c["change"] for r in seen.values() for c in r.json()["changes"])


def _signed(received: Received) -> bool:
    mac = hmac.new(SECRET.encode(), received.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(received.headers["X-Driftline-Signature"], f"sha256={mac}")


def _delivered(notifier: ServiceProcess) -> float:
    status, text = notifier.get("/metrics")
    assert status == 200
    total = 0.0
    for line in text.splitlines():
        if (
            line.startswith("driftline_notify_notifications_total{")
            and 'outcome="delivered"' in line
        ):
            total += float(line.rsplit(" ", 1)[1])
    return total


def _wait_delivered(notifier: ServiceProcess, count: int, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while _delivered(notifier) < count:
        assert time.monotonic() < deadline, notifier.log()[-3000:]
        time.sleep(0.2)


def _reread_everything(deployment: Deployment) -> None:
    """Commit offset 0 for the notifier's group (once the killed member's session is over), as an
    offset reset or a kill before any commit would leave it."""
    group = f"{deployment.topic_prefix.rstrip('.')}-notify"
    consumer = open_consumer("confluent", deployment.bootstrap, group_id=group)
    tp = TP(deployment.topic("alerts"), 0)
    consumer.assign({tp: 0})
    deadline = time.monotonic() + 60
    try:
        while True:
            try:
                consumer.commit({tp: 0})
                return
            except KafkaError:  # the dead member still holds the group
                assert time.monotonic() < deadline, "the group never let go of the killed notifier"
                time.sleep(1.0)
    finally:
        consumer.close()


def test_one_cause_is_one_incident_and_each_change_arrives_once_across_failure_and_sigkill(
    deployment: Deployment,
) -> None:
    model = deployment.model
    # The webhook refuses the first attempt (503): the notification is retried, same key.
    with receiving(lambda n: 503 if n == 0 else 200) as hook, receiving() as slack:
        args = ("notify", "--webhook", hook.url, "--slack", slack.url)
        notifier = deployment.start(*args, env=FAST)
        notifier.wait_ready()
        send_raw(deployment.bootstrap, deployment.topic("alerts"), HOSTILE[:3] + _burst(model))

        # One incident, one notification per route, carrying all twelve alerts.
        [posted] = hook.wait_for(lambda got: len(got) >= 1, what="the webhook's notification")
        assert hook.received[0].status == 503
        assert hook.received[1].headers["X-Driftline-Attempt"] == "2"
        assert hook.received[0].headers["Idempotency-Key"] == posted.headers["Idempotency-Key"]
        assert _signed(posted)
        body = posted.json()
        assert body["state"] == "firing" and body["model"] == model
        assert body["features"] == sorted(FEATURES)
        assert len(body["changes"]) == 12
        assert "data drift on 10 features" in body["summary"], body["summary"]
        [message] = slack.wait_for(lambda got: len(got) >= 1, what="the Slack message")
        text = message.json()["text"]
        assert "12 alerts firing" in text and "data drift on 10 features" in text, text

        # Killed once both deliveries are recorded; then every alert record is read again.
        _wait_delivered(notifier, 2)
        notifier.kill()
        _reread_everything(deployment)
        send_raw(deployment.bootstrap, deployment.topic("alerts"), _burst(model, "resolved"))
        again = deployment.start(*args, env=FAST)
        hook.wait_for(
            lambda got: sum(_changes(got).values()) >= 24, what="the resolutions", timeout_s=90
        )
        slack.wait_for(lambda got: len(got) >= 2, what="the resolution on Slack", timeout_s=30)
        _wait_delivered(again, 2)
        while "is over and told" not in again.log():  # the incident is done and forgotten
            time.sleep(0.2)
        # Killed again, and everything read again by a third: the incident is gone from Redis,
        # and what each route was told is remembered apart from it, so nobody hears twice.
        again.kill()
        _reread_everything(deployment)
        third = deployment.start(*args, env=FAST)
        third.wait_ready()
        deadline = time.monotonic() + 60
        while "alerts partition 0 assigned" not in third.log():
            assert time.monotonic() < deadline, third.log()[-3000:]
            time.sleep(0.2)
        time.sleep(6)  # group wait and interval, twice over: room for anything sent twice
        assert third.stop() == 0

    counts = _changes(hook.accepted())
    assert set(counts.values()) == {1}, counts  # every change once, none twice
    assert len(counts) == 24
    assert all(_signed(r) for r in hook.accepted())
    assert len(slack.accepted()) == 2, [r.json()["text"] for r in slack.accepted()]
    assert "resolved" in slack.accepted()[1].json()["text"]
    # The hostile records are dead letters with their reason (once per reading: all were read
    # again), and nothing else is.
    letters = [
        DeadLetter.decode(r.value) for r in read_all(deployment.bootstrap, deployment.topic("dlq"))
    ]
    assert {(x.partition, x.offset) for x in letters} == {(0, 0), (0, 1), (0, 2)}, letters
    assert all(x.service == "notify" and "bad_record" in x.error for x in letters)


def test_a_failing_endpoint_blocks_nobody_and_dead_letters_what_it_could_not_take(
    deployment: Deployment, tmp_path: Path
) -> None:
    model = deployment.model
    healthy = {"down": False}  # the endpoint that is down comes back later
    with (
        receiving(lambda n: 200 if healthy["down"] else 500) as down,
        receiving(lambda n: 404) as wrong,
        receiving() as ok,
    ):
        routes = tmp_path / "routes.toml"
        routes.write_text(
            f'[[routes]]\nname = "down"\ntype = "webhook"\nurl = "{down.url}"\n\n'
            f'[[routes]]\nname = "wrong"\ntype = "webhook"\nurl = "{wrong.url}"\n\n'
            f'[[routes]]\nname = "critical-only"\ntype = "slack"\nurl = "{ok.url}"\n'
            'severities = ["critical"]\n'
        )
        env = {**FAST, "DRIFTLINE_NOTIFY_RETRY_FOR_S": "6"}
        notifier = deployment.start("notify", "--routes", str(routes), env=env)
        notifier.wait_ready()
        send_raw(deployment.bootstrap, deployment.topic("alerts"), _burst(model)[-3:] + HOSTILE[3:])
        # The working route hears at once, while the others fail (its two critical alerts only).
        [message] = ok.wait_for(lambda got: len(got) >= 1, timeout_s=30, what="the Slack message")
        assert "3 alerts firing" in message.json()["text"]  # told of its two critical ones
        assert "prediction_drift" in message.json()["text"]
        assert "data_drift" not in message.json()["text"].split("\n", 1)[1]
        early = read_all(deployment.bootstrap, deployment.topic("dlq"))
        assert not [r for r in early if b"route down" in r.value]  # still retrying it
        deadline = time.monotonic() + 60
        while True:
            letters = [
                DeadLetter.decode(r.value)
                for r in read_all(deployment.bootstrap, deployment.topic("dlq"))
            ]
            undelivered = [x for x in letters if x.error.startswith("undelivered")]
            if len(undelivered) >= 8:  # four alerts (three and the far-off one) to two routes
                break
            assert time.monotonic() < deadline, notifier.log()[-3000:]
            time.sleep(0.5)
        status, ready = notifier.get("/readyz")
        assert status == 200 and "failing" in ready, ready
        assert not down.accepted()
        time.sleep(2.5)  # the status is published every 2 s
        shown = run_cli(deployment, "status", "--json")
        assert shown.returncode == 0, shown.stderr
        [me] = json.loads(shown.stdout)["notifiers"]
        routes = {r["name"]: r for r in me["routes"]}
        assert me["partitions"] == [0]
        assert (
            "HTTP 500" in routes["down"]["failing"] and routes["critical-only"]["failing"] is None
        )
        assert "hooks" not in json.dumps(routes) and "/hook" not in json.dumps(routes)  # no paths
        listed = run_cli(deployment, "status").stdout
        assert "route down (webhook http://127.0.0.1:" in listed and "failing, retrying" in listed

        refused = Counter(r.headers["Idempotency-Key"] for r in wrong.received)
        retried = Counter(r.headers["Idempotency-Key"] for r in down.received)
        # Once the endpoint is back, replaying its dead letters delivers what it missed, once
        # (the replayed alerts are tried again on every route that failed them).
        healthy["down"] = True
        replayed = run_cli(deployment, "dlq", "replay", "--reason", "route down")
        assert replayed.returncode == 0, replayed.stderr
        down.wait_for(lambda got: sum(_changes(got).values()) >= 4, what="the replayed")
        time.sleep(3)
        assert notifier.stop() == 0

    # Two notifications each (the burst's incident, the far-off alert's): a 404 is not retried,
    # a 500 is, with backoff, until the notification is DRIFTLINE_NOTIFY_RETRY_FOR_S old (the
    # second waited behind the first, so it has fewer attempts).
    assert sorted(refused.values()) == [1, 1], refused
    assert len(retried) == 2 and min(retried.values()) >= 2 and max(retried.values()) >= 3
    by_route = Counter("route down" in x.error for x in undelivered)
    assert by_route == {True: 4, False: 4}, [x.error for x in undelivered]
    assert any("HTTP 404" in x.error and "refused" in x.error for x in undelivered)
    assert any("HTTP 500" in x.error and "retries exhausted" in x.error for x in undelivered)
    counts = _changes(down.accepted())
    assert set(counts.values()) == {1} and len(counts) == 4, counts
    # Each dead letter holds the alert as it was read, at its place on the alerts topic.
    alert = DriftAlert.decode(undelivered[0].original)
    assert undelivered[0].source_topic == deployment.topic("alerts")
    assert alert.alert_id.startswith(model) or alert.alert_id == "far"


@pytest.mark.skipif(
    ALERTMANAGER is None, reason="Debian's prometheus-alertmanager is not installed"
)
def test_alertmanager_hears_of_the_incident_firing_then_resolved(
    deployment: Deployment, tmp_path: Path
) -> None:
    model = deployment.model
    # Alertmanager ends an alert nobody re-posts within 3 s; the notifier re-posts every second.
    env = {**FAST, "DRIFTLINE_NOTIFY_RESEND_S": "1"}
    with receiving() as pager, alertmanager(tmp_path, pager.url, resolve_timeout="3s") as manager:
        notifier = deployment.start("notify", "--alertmanager", manager, env=env)
        notifier.wait_ready()
        firing = [(model.encode(), _alert(model, n, "data_drift", f"f{n}")) for n in range(2)]
        send_raw(deployment.bootstrap, deployment.topic("alerts"), firing)
        got = pager.wait_for(lambda got: len(got) >= 1, timeout_s=60, what="Alertmanager")
        first = got[0].json()
        assert first["status"] == "firing"
        assert len(first["alerts"]) == 2  # grouped by incident in Alertmanager
        assert first["groupLabels"]["incident"]
        labels = first["alerts"][0]["labels"]
        assert labels["alertname"] == "DriftlineDataDrift" and labels["model"] == model
        time.sleep(8)  # past the resolve timeout, twice over: still firing, re-posted
        assert all(r.json()["status"] == "firing" for r in pager.accepted()), [
            r.json()["status"] for r in pager.accepted()
        ]
        resolved = [
            (model.encode(), _alert(model, n, "data_drift", f"f{n}", "resolved")) for n in range(2)
        ]
        send_raw(deployment.bootstrap, deployment.topic("alerts"), resolved)
        got = pager.wait_for(
            lambda got: any(r.json()["status"] == "resolved" for r in got),
            timeout_s=60,
            what="the resolution through Alertmanager",
        )
        last = next(r.json() for r in got if r.json()["status"] == "resolved")
        assert {a["status"] for a in last["alerts"]} == {"resolved"}
        assert all(a["endsAt"] > a["startsAt"] for a in last["alerts"])
        assert notifier.stop() == 0


@pytest.mark.skipif(
    ALERTMANAGER is None, reason="Debian's prometheus-alertmanager is not installed"
)
def test_a_monitors_drift_alerts_reach_alertmanager_a_webhook_and_slack_as_one_incident(
    deployment: Deployment, tmp_path: Path
) -> None:
    """The whole way: a real monitor finds two features drifting in a real stream, and each of
    the three kinds of route hears of it once, as one incident."""
    scenario = Scenario(drift="covariate", at=2_000, shifted=(2, 7), shift=2.0)
    _, serving = register_model(deployment, scenario)
    scored = score(scenario, 6_000, serving, seed=4)
    env = {**FAST, "DRIFTLINE_NOTIFY_GROUP_WAIT_S": "5"}
    with (
        receiving() as pager,
        alertmanager(tmp_path, pager.url) as manager,
        receiving() as hook,
        receiving() as slack,
    ):
        notifier = deployment.start(
            "notify",
            "--alertmanager",
            manager,
            "--webhook",
            hook.url,
            "--slack",
            slack.url,
            env=env,
        )
        monitor = start_monitor(deployment)
        notifier.wait_ready()
        produce(deployment, scored, rate=4_000)
        wait_joined(deployment, monitor, len(scored.events))
        [posted] = hook.wait_for(lambda got: len(got) >= 1, timeout_s=60, what="the webhook")
        [message] = slack.wait_for(lambda got: len(got) >= 1, timeout_s=30, what="Slack")
        paged = pager.wait_for(lambda got: len(got) >= 1, timeout_s=30, what="Alertmanager")
        time.sleep(3)  # room for a second notification, which must not come
        assert monitor.stop() == 0 and notifier.stop() == 0

    _cloudevents_through_kcat(deployment)
    body = posted.json()
    assert body["features"] == ["x2", "x7"], body
    assert {c["kind"] for c in body["changes"]} == {"data_drift"}
    assert "data drift on 2 features (x2, x7)" in message.json()["text"]
    assert len(hook.accepted()) == 1 and len(slack.accepted()) == 1
    assert len(paged) == 1
    [group] = [r.json() for r in paged]
    assert group["groupLabels"]["incident"] == body["incident_id"]
    assert sorted(a["labels"]["feature"] for a in group["alerts"]) == ["x2", "x7"]


def test_check_sends_each_route_one_test_notification_and_says_what_it_answered(
    deployment: Deployment,
) -> None:
    with receiving() as ok, receiving(lambda n: 403) as refusing:
        checked = run_cli(
            deployment, "notify", "--check", "--webhook", ok.url, "--slack", refusing.url
        )
        assert checked.returncode == 4, checked.stderr
        assert "webhook (webhook http://127.0.0.1:" in checked.stdout
        assert ": delivered (HTTP 200)" in checked.stdout
        assert (
            "slack (slack http://127.0.0.1:" in checked.stdout
            and "FAILED: HTTP 403" in checked.stdout
        )
        [posted] = ok.accepted()
        body = posted.json()
        assert body["state"] == "resolved" and "driftline notify --check" in body[
            "summary"
        ] + json.dumps(body["changes"])
        assert posted.headers["Idempotency-Key"] == body["notification_id"]
        assert len(refusing.received) == 1  # once, no retries
        assert run_cli(deployment, "notify", "--check", "--webhook", ok.url).returncode == 0


def _cloudevents_through_kcat(deployment: Deployment) -> None:
    """The monitor's alert records, read by a client driftline did not write (kcat): each is a
    CloudEvent, its attributes in headers, its ce_id the alert's id and state."""
    kcat = shutil.which("kcat")
    if kcat is None:
        pytest.skip("kcat is not installed (Debian/Ubuntu: apt-get install kcat)")
    read = subprocess.run(
        [kcat, "-C", "-b", str(deployment.bootstrap), "-t", deployment.topic("alerts"), "-e", "-q",
         "-f", "%h\t%s\n"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    lines = [line.split("\t", 1) for line in read.stdout.splitlines() if line]
    assert lines, read.stderr
    for headers, value in lines:
        attributes = dict(h.split("=", 1) for h in headers.split(","))
        alert = json.loads(value)
        assert attributes["ce_specversion"] == "1.0"
        assert attributes["ce_id"] == f"{alert['alert_id']}/{alert['state']}"
        assert attributes["ce_type"] == f"io.driftline.alert.{alert['state']}"
        assert attributes["ce_source"].endswith(f"/monitor/{deployment.model}")
        assert attributes["content-type"] == "application/json"
