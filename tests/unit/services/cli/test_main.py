"""The `driftline` command's surface: help that explains, flags over variables, clean errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.cli.main import build_parser, main
from shared.runtime.entry import settings_from


def test_top_level_help_explains_driftline(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["--help"])
    assert stopped.value.code == 0
    out = capsys.readouterr().out
    assert "keeps machine-learning models healthy" in out
    assert "infra" in out
    assert "DRIFTLINE_<NAME>" in out


def test_infra_up_help_lists_its_settings(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["infra", "up", "--help"])
    out = capsys.readouterr().out
    for flag in ("--kafka-bootstrap", "--redis-url", "--kafka-port", "--topic-prefix", "--json"):
        assert flag in out
    assert "mvn" in out


def test_missing_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main([])
    assert stopped.value.code == 2
    assert "required: COMMAND" in capsys.readouterr().err


def test_bad_setting_is_one_clear_line_and_exit_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DRIFTLINE_PARTITIONS", "zero")
    assert main(["infra", "status"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("driftline: error: DRIFTLINE_PARTITIONS:")
    assert "Traceback" not in err


def test_status_of_a_home_with_nothing_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("DRIFTLINE_KAFKA_BOOTSTRAP", raising=False)
    monkeypatch.delenv("DRIFTLINE_REDIS_URL", raising=False)
    assert main(["infra", "status", "--json", "--home", str(tmp_path)]) == 3
    assert json.loads(capsys.readouterr().out) == {
        "kafka": {
            "bootstrap": None,
            "running": False,
            "security_protocol": "PLAINTEXT",
            "runtime": None,
        },
        "redis": {"url": None, "running": False, "authenticated": False, "runtime": None},
    }


def test_flag_overrides_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRIFTLINE_HOME", "/from/env")
    monkeypatch.setenv("DRIFTLINE_TOPIC_PREFIX", "env.")
    parser = build_parser()
    flagged = settings_from(parser.parse_args(["infra", "status", "--home", "/from/flag"]))
    assert flagged.home == Path("/from/flag")
    assert flagged.topic_prefix == "env."  # a flag not given leaves its variable in place
    assert settings_from(parser.parse_args(["infra", "status"])).home == Path("/from/env")
