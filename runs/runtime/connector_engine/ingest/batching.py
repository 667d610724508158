"""How many partitions one sandbox request of an ingest reads. Django-free.

A sandbox request costs tens of milliseconds of forks and namespaces, far more than reading a
small partition, so an ingest reads partitions in batches. The first requests read one partition
each; later batches are sized from the seconds and bytes per partition seen so far to take about
BATCH_TARGET_S (at most a quarter of the read timeout) and return about BATCH_TARGET_BYTES,
capped by the configured batch size (INGEST_BATCH_SIZE) and by an even share of what is left
(every reader stays busy to the end). Slow or large partitions therefore keep being read one at
a time.
"""

from __future__ import annotations

import math

from connector_engine.sandbox.outcomes import MAX_RESULT_BYTES

BATCH_TARGET_S = 2.0  # how long one batch should take: progress and redone work stay small
BATCH_TARGET_BYTES = MAX_RESULT_BYTES // 8  # a batch's tables, far below the result cap


class BatchSizer:
    """Size the next batch from what the batches read so far measured."""

    def __init__(self, limit: int, readers: int, timeout_s: float) -> None:
        self.limit = max(1, limit)
        self.readers = max(1, readers)
        self.target_s = min(BATCH_TARGET_S, timeout_s / 4)
        self.partitions = 0
        self.seconds = 0.0
        self.bytes = 0

    def record(self, partitions: int, read_s: float, table_bytes: int) -> None:
        """Add a finished batch: how many partitions it read, in how long, returning how much."""
        self.partitions += partitions
        self.seconds += read_s
        self.bytes += table_bytes

    def next_size(self, remaining: int) -> int:
        """Return the next batch's size: 1 until something was measured."""
        if not self.partitions:
            return 1
        by_time = self.target_s * self.partitions / max(self.seconds, 1e-6)
        by_bytes = BATCH_TARGET_BYTES * self.partitions / max(self.bytes, 1)
        share = math.ceil(remaining / self.readers)
        return max(1, min(self.limit, share, int(by_time), int(by_bytes)))
