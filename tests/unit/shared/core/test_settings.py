"""Settings: defaults, DRIFTLINE_* variables, flags over variables, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.core.errors import ConfigError
from shared.core.settings import ENV_PREFIX, Settings, load_settings
from shared.core.topics import Topics


def settings_table() -> list[tuple[str, str, str]]:
    """Rows ``(variable, default, description)`` for every setting, as the README documents them."""
    rows = []
    for name, field in Settings.model_fields.items():
        default = "unset" if field.default is None else str(field.default)
        rows.append((ENV_PREFIX + name.upper(), default, field.description or ""))
    return rows


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [row[0] for row in settings_table()]:
        monkeypatch.delenv(name, raising=False)


def test_defaults() -> None:
    settings = load_settings()
    assert settings.topic_prefix == "driftline."
    assert settings.redis_prefix == "driftline:"
    assert settings.partitions == 3
    assert settings.max_message_bytes == 1 << 20
    assert settings.kafka_bootstrap is None
    assert settings.redis_url is None
    assert settings.home == Path("~/.driftline").expanduser()


def test_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRIFTLINE_TOPIC_PREFIX", "team-a.")
    monkeypatch.setenv("DRIFTLINE_PARTITIONS", "12")
    monkeypatch.setenv("DRIFTLINE_KAFKA_BOOTSTRAP", "broker:9092")
    monkeypatch.setenv("DRIFTLINE_HOME", "/srv/driftline")
    settings = load_settings()
    assert (settings.topic_prefix, settings.partitions) == ("team-a.", 12)
    assert settings.kafka_bootstrap == "broker:9092"
    assert settings.home == Path("/srv/driftline")


def test_flags_override_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRIFTLINE_PARTITIONS", "12")
    monkeypatch.setenv("DRIFTLINE_REDIS_PREFIX", "env:")
    settings = load_settings(partitions=6, redis_prefix=None)
    assert settings.partitions == 6
    assert settings.redis_prefix == "env:"  # an absent flag (None) leaves the variable in force


def test_bad_variable_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRIFTLINE_PARTITIONS", "many")
    with pytest.raises(ConfigError, match=r"DRIFTLINE_PARTITIONS: .*integer.*'many'"):
        load_settings()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("kafka_port", 70000),
        ("partitions", 0),
        ("max_message_bytes", 1),
        ("kafka_version", "3.9.0"),
        ("topic_prefix", "has space."),
        ("log_level", "LOUD"),
    ],
)
def test_invalid_values_are_refused(field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=f"DRIFTLINE_{field.upper()}"):
        load_settings(**{field: value})


def test_unknown_setting_is_refused() -> None:
    with pytest.raises(ConfigError, match="DRIFTLINE_COLOUR"):
        load_settings(colour="blue")


def test_settings_are_immutable() -> None:
    settings = Settings()
    with pytest.raises(ValueError, match="frozen"):
        settings.partitions = 5  # type: ignore[misc]


def test_readme_documents_every_setting() -> None:
    readme = (Path(__file__).parents[4] / "README.md").read_text()
    missing = [name for name, _, _ in settings_table() if f"`{name}`" not in readme]
    assert missing == []


def test_a_second_deployment_gets_its_own_redis_prefix_and_groups() -> None:
    default, staging = load_settings(), load_settings(topic_prefix="staging.")
    assert (default.redis_prefix, staging.redis_prefix) == ("driftline:", "staging:")
    groups = {Topics(s.topic_prefix).group("predictor", "churn") for s in (default, staging)}
    assert groups == {"driftline-predictor-churn", "staging-predictor-churn"}


def test_an_explicit_redis_prefix_wins_over_the_deployments(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DRIFTLINE_TOPIC_PREFIX", "staging.")
    monkeypatch.setenv("DRIFTLINE_REDIS_PREFIX", "shared:")
    assert load_settings().redis_prefix == "shared:"
    monkeypatch.delenv("DRIFTLINE_REDIS_PREFIX")
    assert load_settings().redis_prefix == "staging:"
