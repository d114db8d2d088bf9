"""A stream mapping keeps its place in the stream when it is updated, as Lambda's does.

LocalStack 2026.3 re-creates a mapping's worker on UpdateEventSourceMapping
(``LambdaProvider.update_event_source_mapping_v2``: "we re-create the entire ESM worker"), and
the new ``StreamPoller`` starts with no shard iterators, so it asks for new ones at the mapping's
``StartingPosition``. For a ``TRIM_HORIZON`` mapping (the outbox relay's) that is the table's
whole stream, a day of records, read and handed to the function again. ``chalice deploy`` updates
every mapping on every deploy, so each ``make run`` or deploy on a local cloud that had run the
benchmark made the relay publish every event of the day again, and new orders waited behind them
(measured: a load run started after such a deploy timed out 62 orders at 8 customers while the
relay was invoked 6-10 times a second for a few orders a second).

Here each stream poller records, per mapping (its UUID and stream), the shard iterator from which
nothing of that shard is left unhanded: after a batch was read and handed over and nothing waits
in the shard's batcher. A poller that starts without iterators takes its mapping's recorded ones,
if any. A worker stopped in the middle of a batch never recorded past it, so its successor reads
that batch again (at least once, as Lambda delivers; the relay's consumers are idempotent); none
is skipped. Local only: Lambda keeps the checkpoint itself.
"""

from __future__ import annotations

import threading
from typing import Any

_WRAPPED = "_localcloud_checkpointed"
# (mapping UUID, stream ARN) -> shard id -> the iterator to read on from.
CHECKPOINTS: dict[tuple[str, str], dict[str, str]] = {}
_LOCK = threading.Lock()


def _mapping(poller: Any) -> tuple[str, str] | None:
    uuid = getattr(poller, "esm_uuid", None)
    return (uuid, poller.source_arn) if uuid else None


def install() -> None:
    """Wrap ``StreamPoller.poll_events`` (resume) and ``poll_events_from_shard`` (record), once."""
    from localstack.services.lambda_.event_source_mapping.pollers.stream_poller import (
        StreamPoller,
    )

    if getattr(StreamPoller.poll_events_from_shard, _WRAPPED, False):
        return
    poll_events = StreamPoller.poll_events
    poll_events_from_shard = StreamPoller.poll_events_from_shard

    def resuming_poll_events(self: Any) -> Any:
        mapping = _mapping(self)
        if not self.shards and mapping is not None:
            with _LOCK:
                recorded = dict(CHECKPOINTS.get(mapping, {}))
            if recorded:
                self.shards = recorded
        return poll_events(self)

    def recording_poll_events_from_shard(self: Any, shard_id: str, shard_iterator: str) -> Any:
        result = poll_events_from_shard(self, shard_id, shard_iterator)
        mapping = _mapping(self)
        waiting = getattr(self.shard_batcher.get(shard_id), "_batch", None)
        if mapping is None or waiting:
            return result  # records wait in the shard's batcher: not handed over yet
        with _LOCK:
            recorded = CHECKPOINTS.setdefault(mapping, {})
            if shard_id in self.shards and set(recorded) <= set(self.shards):
                recorded[shard_id] = self.shards[shard_id]
            else:  # the poller took new shards (re-initialised): start from them
                CHECKPOINTS[mapping] = dict(self.shards)
        return result

    setattr(recording_poll_events_from_shard, _WRAPPED, True)
    StreamPoller.poll_events = resuming_poll_events  # type: ignore[method-assign]
    StreamPoller.poll_events_from_shard = recording_poll_events_from_shard  # type: ignore[method-assign]
