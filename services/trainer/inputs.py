"""Where a trainer starts reading: every ``examples`` partition from far enough back for a full
window, and the retrain partition from the last request the leader committed (else the start).

Assigned, not subscribed: every trainer reads every partition, so a standby's window is as warm
as the leader's. How far back is judged by the size of each partition's newest record: the
monitor writes its joined events in batches, so a window of N examples is fewer than N records
(twice what the newest record suggests, for room to spare).
"""

from __future__ import annotations

import logging
import time

from shared.core.errors import BadMessage, KafkaError
from shared.core.messages import decode_examples
from shared.core.topics import Topics
from shared.io.kafka import record_value
from shared.io.transport import TP, Consumer

log = logging.getLogger(__name__)

PARTITIONS_WAIT_S = 60.0


def position(
    consumer: Consumer, topics: Topics, retrain: TP, window_count: int, model: str
) -> int | None:
    """Assign and seek every input partition; return the retrain offset committed, if any."""
    deadline = time.monotonic() + PARTITIONS_WAIT_S
    while True:
        partitions = consumer.partitions_for(topics.examples)
        if partitions:
            break
        if time.monotonic() > deadline:
            raise KafkaError(f"topic {topics.examples} has no partitions; run `driftline infra up`")
        time.sleep(0.5)
    examples = [TP(topics.examples, p) for p in sorted(partitions)]
    ends = consumer.end_offsets(examples)
    starts = consumer.beginning_offsets([*examples, retrain])
    back = {tp: records_back(consumer, tp, starts[tp], ends[tp], window_count) for tp in examples}
    committed = consumer.committed(retrain)
    offsets = {tp: max(starts[tp], ends[tp] - back[tp]) for tp in examples}
    offsets[retrain] = starts[retrain] if committed is None else committed
    consumer.assign(offsets)
    log.info(
        "trainer for %s reading %s (%d partitions) and %s from offset %s",
        model,
        topics.examples,
        len(examples),
        topics.retrain,
        committed if committed is not None else "0",
    )
    return committed


def records_back(consumer: Consumer, tp: TP, start: int, end: int, window_count: int) -> int:
    """Records of ``tp`` to read back for ``window_count`` examples."""
    if end <= start:
        return 0
    consumer.assign({tp: end - 1})  # alone: a poll returns nothing else, and moves nothing else
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        newest = [r for r in consumer.poll(0.2, 1) if (r.topic, r.partition) == tp]
        if newest:
            try:
                per_record = len(decode_examples(record_value(newest[-1])))
            except BadMessage:
                per_record = 1
            return -(-2 * window_count // max(per_record, 1))
    return window_count  # not read in time: as if one example per record
