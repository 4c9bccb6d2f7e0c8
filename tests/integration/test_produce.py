"""`driftline produce` from files, as a user feeds a deployment: a CSV of feature events scored by a
real predictor, and JSON Lines labels keyed and partitioned where the monitor's join needs them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from shared.core.clock import now_ms
from shared.io.kafka import key_partition
from shared.models.signing import load_verifier
from shared.registry.loading import load_version
from tests.harness.predictor import Deployment, read_all, run_cli, wait_for_predictions

pytestmark = pytest.mark.integration


def test_a_csv_of_events_is_scored_and_jsonl_labels_land_on_their_events_partitions(
    deployment: Deployment, tmp_path: Path
) -> None:
    deployment.registry.promote(deployment.model, deployment.register())
    predictor = deployment.start_predictor()
    predictor.wait_ready()
    events = tmp_path / "events.csv"
    hour_ago = now_ms() - 3_600_000
    events.write_text(
        "event_id,ts,a,b,c\n"
        "csv-1,,0.5,-1.25,2\n"
        f"csv-2,{hour_ago},1.5,0.25,-3\n"
        ",,1,1,1\n"  # no event_id: refused, named by its line
        "csv-3,,-0.5,2.5,0\n"
    )
    produced = run_cli(deployment, "produce", "features", str(events), "--rate", "100", "--json")
    assert produced.returncode == 4, produced.stderr  # some rows refused
    assert f"{events}:4: refused: event_id: missing" in produced.stderr
    summary = json.loads(produced.stdout)
    assert (summary["sent"], summary["refused"]) == (3, 1)
    found = wait_for_predictions(deployment, ["csv-1", "csv-2", "csv-3"])
    assert all(len(found[i]) == 1 for i in ("csv-1", "csv-2", "csv-3"))
    [record] = [
        json.loads(r.value)
        for r in read_all(deployment.bootstrap, deployment.topic("predictions"))
        if json.loads(r.value)["event_id"] == "csv-2"
    ]
    assert record["ts"] == hour_ago  # the file's event time, not the send time
    assert record["features"] == {"a": 1.5, "b": 0.25, "c": -3}

    labels = tmp_path / "labels.jsonl"
    ids = [f"label-{i}" for i in range(40)]
    labels.write_text(
        "".join(json.dumps({"event_id": i, "label": n % 2}) + "\n" for n, i in enumerate(ids))
    )
    sent = run_cli(deployment, "produce", "labels", str(labels))
    assert sent.returncode == 0, sent.stderr
    assert "sent 40 records" in sent.stdout
    records = read_all(deployment.bootstrap, deployment.topic("labels"))
    assert sorted(r.key.decode() for r in records) == sorted(ids)
    assert all(r.partition == key_partition(r.key, 3) for r in records)  # murmur2, as Java's
    assert predictor.stop() == 0


def test_models_predict_scores_a_file_offline_as_the_predictor_would(
    deployment: Deployment, tmp_path: Path
) -> None:
    version = deployment.register()
    deployment.registry.promote(deployment.model, version)
    rows = tmp_path / "rows.csv"
    rows.write_text(
        "event_id,a,b,c\n"
        "r-1,0.5,-1.25,2\n"
        "r-2,1.5,0.25,-3\n"
        "r-3,DE,0.25,-3\n"  # a category for a number: refused, as a predictor refuses it
        "r-4,-2,2,1\n"
    )
    out = tmp_path / "predictions.jsonl"
    scored = run_cli(
        deployment, "models", "predict", "--model", deployment.model, str(rows), "--out", str(out)
    )
    assert scored.returncode == 4, scored.stderr
    assert f"{rows}:4: refused:" in scored.stderr and "features.a" in scored.stderr
    assert "3 rows scored" in scored.stderr
    found = [json.loads(line) for line in out.read_text().splitlines()]
    assert [p["event_id"] for p in found] == ["r-1", "r-2", "r-4"]
    assert {p["version"] for p in found} == {version}
    # The same predictions a live predictor makes with that version (its own scorer here).
    serving = load_version(
        deployment.registry,
        deployment.model,
        version,
        load_verifier(deployment.home / "keys" / "signing.pub", None),
    )
    expected, scores = serving.score(np.array([[0.5, -1.25, 2], [1.5, 0.25, -3], [-2, 2, 1]]))
    assert [p["prediction"] for p in found] == list(expected)
    assert [p["score"] for p in found] == pytest.approx(scores)
    assert not read_all(deployment.bootstrap, deployment.topic("predictions"))  # offline only
