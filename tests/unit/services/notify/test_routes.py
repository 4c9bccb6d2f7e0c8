"""Routes: what a routes file or the quick flags make, and every mistake refused with its fix."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from services.notify.routes import load_routes, parse_routes
from shared.core.errors import ConfigError


def test_quick_flags_route_everything_and_are_named_after_their_kind() -> None:
    routes = load_routes(
        None,
        alertmanager=["http://am:9093/"],
        webhook=["https://a/h", "https://b/h"],
        slack=["https://hooks.slack.com/services/T/B/X"],
        webhook_secret=b"k",
    )
    assert [r.name for r in routes] == ["alertmanager", "webhook-1", "webhook-2", "slack"]
    assert routes[0].endpoint == "http://am:9093/api/v2/alerts"
    assert routes[1].secret == b"k" and routes[3].secret is None
    assert all(r.wants(kind="concept_drift", severity="info", model="any") for r in routes)


def test_a_routes_file_filters_by_kind_severity_and_model_pattern(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOOK_KEY", "s3cret")
    path = tmp_path / "routes.toml"
    path.write_text(
        '[[routes]]\nname = "audit"\ntype = "webhook"\nurl = "https://audit/h"\n'
        'secret_env = "HOOK_KEY"\nkinds = ["concept_drift", "performance"]\nmodels = ["churn-*"]\n'
    )
    [route] = load_routes(path, slack=[])
    assert route.secret == b"s3cret"
    assert route.wants(kind="performance", severity="info", model="churn-eu")
    assert not route.wants(kind="data_drift", severity="critical", model="churn-eu")
    assert not route.wants(kind="performance", severity="critical", model="fraud")
    assert "s3cret" not in repr(route)


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("[[routes]\n", "not valid TOML"),
        ("", "no [[routes]] table"),
        ("[other]\n", "unknown table"),
        ('[[routes]]\ntype = "pager"\nurl = "http://x"\n', "type must be one of"),
        ('[[routes]]\ntype = "slack"\n', "url is required"),
        ('[[routes]]\ntype = "slack"\nurl = "ftp://x"\n', "http:// or https://"),
        ('[[routes]]\ntype = "slack"\nurl = "http://x"\ncolor = 1\n', "unknown key"),
        ('[[routes]]\ntype = "slack"\nurl = "http://x"\nkinds = ["drift"]\n', "unknown kinds"),
        (
            '[[routes]]\ntype = "slack"\nurl = "http://x"\nseverities = "critical"\n',
            "list of strings",
        ),
        ('[[routes]]\ntype = "slack"\nurl = "http://x"\nname = "a b"\n', "name must be a word"),
        ('[[routes]]\ntype = "webhook"\nurl = "http://x"\nsecret_env = "NOPE_UNSET"\n', "unset"),
    ],
)
def test_a_bad_routes_file_is_refused_naming_the_fix(text: str, said: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(said)):
        parse_routes(text, source="routes.toml")


def test_no_route_at_all_or_a_name_twice_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--alertmanager URL, --webhook URL or --slack URL"):
        load_routes(None)
    path = tmp_path / "routes.toml"
    path.write_text('[[routes]]\ntype = "slack"\nurl = "http://x"\n')
    with pytest.raises(ConfigError, match=r"\['slack'\] named twice"):
        load_routes(path, slack=["http://y"])


def test_an_unreadable_routes_file_says_which(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the routes file"):
        load_routes(tmp_path / "missing.toml")


def test_a_hook_url_can_come_from_the_environment_and_is_never_shown_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEAM_HOOK", "https://hooks.slack.com/services/T0/B0/s3cret")
    path = tmp_path / "routes.toml"
    path.write_text('[[routes]]\nname = "team"\ntype = "slack"\nurl_env = "TEAM_HOOK"\n')
    [route] = load_routes(path)
    assert route.endpoint.endswith("/s3cret")
    assert "s3cret" not in route.describe()
    path.write_text('[[routes]]\ntype = "slack"\nurl_env = "TEAM_HOOK"\nurl = "http://x"\n')
    with pytest.raises(ConfigError, match="not both"):
        load_routes(path)
    path.write_text('[[routes]]\ntype = "slack"\nurl_env = "NOT_SET_HERE"\n')
    with pytest.raises(ConfigError, match="'NOT_SET_HERE', which is unset"):
        load_routes(path)
    with pytest.raises(ConfigError) as refused:
        load_routes(None, slack=["hooks.slack.com/services/T0/B0/s3cret"])
    assert "s3cret" not in str(refused.value)
