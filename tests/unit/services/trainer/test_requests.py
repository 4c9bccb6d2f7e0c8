"""What became of a request: the records earlier trainers wrote still read, and new ones keep
their shape (``driftline status`` and the request log read them as JSON)."""

from __future__ import annotations

import json

import msgspec
import pytest

from services.trainer.requests import Handled


@pytest.mark.parametrize(
    "written",
    [
        {"outcome": "promote", "reason": "candidate wins", "version": 3},
        {"outcome": "failed", "reason": "too few classes"},
        {"outcome": "rolled_back", "version": 2},
    ],
)
def test_a_record_keeps_its_shape_both_ways(written: dict[str, object]) -> None:
    handled = msgspec.json.decode(json.dumps(written).encode(), type=Handled)
    assert handled.outcome == written["outcome"]
    assert json.loads(msgspec.json.encode(handled)) == written
