"""The demo's live panel renders what a user needs from real status shapes (no servers needed)."""

from __future__ import annotations

from rich.console import Console

from services.cli.demo.view import Panel, render_panel

MONITOR = {
    "join": {"joined": 5_120},
    "versions": [
        {
            "version": 1,
            "labelled": 5_000,
            "window": 1_000,
            "retired": False,
            "metrics": {"accuracy": 0.41, "f1": 0.38, "roc_auc": None},
            "drift": [
                {"feature": "x2", "drifting": True, "psi": 0.31},
                {"feature": "x3", "drifting": False, "psi": 0.01},
            ],
            "firing": ["concept_drift"],
        }
    ],
}
TRAINER = {
    "examples": 4_200,
    "pending": [{"request_id": "r", "waiting": "312 of the 1000 examples needed; waiting"}],
}


def _text(panel: Panel) -> str:
    console = Console(record=True, width=140)
    console.print(render_panel(panel))
    return console.export_text()


def test_the_live_panel_shows_progress_services_versions_and_events() -> None:
    panel = Panel(
        model="demo-abc",
        events=12_000,
        drift_at=3_600,
        sent=5_200,
        state={
            "lags": {"predictor": 12, "monitor": 340},
            "active": 1,
            "monitor": MONITOR,
            "trainer": TRAINER,
        },
        rates={"predictor": 1_003.4, "monitor": 950.0},
        timeline=["3,640: alert firing on v1: concept_drift"],
    )
    text = _text(panel)
    assert "events 5,200 / 12,000 (drift injected at 3,600)" in text
    assert "serving v1" in text and "predictor" in text and "1,003" in text and "340" in text
    assert "4,200 examples" in text and "312 of the 1000 examples needed" in text
    assert "accuracy 0.41" in text and "x2" in text and "x3" not in text
    assert "alert firing on v1: concept_drift" in text


def test_the_panel_before_any_status_arrives() -> None:
    panel = Panel(
        "demo-abc",
        12_000,
        3_600,
        0,
        {"lags": {}, "active": 1, "monitor": None, "trainer": None},
        {},
        [],
    )
    text = _text(panel)
    assert "before drift" in text and "serving v1" in text
