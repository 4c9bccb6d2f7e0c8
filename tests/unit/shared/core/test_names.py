"""Topic and Redis key names follow their prefixes, so deployments can share servers."""

from __future__ import annotations

import pytest

from shared.core.topics import CO_PARTITIONED, NOUNS, Topics
from shared.io.keys import RedisKeys


def test_every_design_topic_is_named_with_the_prefix() -> None:
    topics = Topics("acme.")
    assert [spec.name for spec in topics.specs(3)] == [f"acme.{noun}" for noun in NOUNS]
    assert set(NOUNS) == {
        "features",
        "labels",
        "predictions",
        "examples",
        "alerts",
        "retrain",
        "model-events",
        "dlq",
    }


def test_joined_topics_share_the_configured_partition_count() -> None:
    specs = {spec.name: spec.partitions for spec in Topics("p.").specs(7)}
    assert {specs[f"p.{noun}"] for noun in CO_PARTITIONED} == {7}
    assert specs["p.examples"] == specs["p.dlq"] == 7
    assert specs["p.alerts"] == specs["p.retrain"] == specs["p.model-events"] == 1


def test_unknown_noun_and_bad_partition_count_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown topic noun"):
        Topics("p.").name("feature")
    with pytest.raises(ValueError, match="partitions must be >= 1"):
        Topics("p.").specs(0)


def test_redis_keys_follow_the_design_layout() -> None:
    keys = RedisKeys("tenant:")
    assert keys.versions("m") == "tenant:model:m:versions"
    assert keys.next_version("m") == "tenant:model:m:next"
    assert keys.version("m", 4) == "tenant:model:m:v:4"
    assert keys.active("m") == "tenant:model:m:active"
    assert keys.history("m") == "tenant:model:m:history"
    assert keys.changed("m") == "tenant:model:m:changed"
    assert keys.lock("trainer:m") == "tenant:lock:trainer:m"


@pytest.mark.parametrize("name", ["", "a:b"])
def test_model_names_that_would_break_the_key_layout_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="model name"):
        RedisKeys("d:").active(name)
