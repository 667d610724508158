"""How many partitions one sandbox request of an ingest reads. Django-free.

A sandbox request costs a context() (a client to build: a tenth of a second for boto3) and
some milliseconds of its own, far more than reading a small partition, so an ingest reads
partitions in batches. First one partition per reader (a probe each; nothing more is handed out
until one is measured), then batches sized from the seconds and bytes per partition seen so far
to take about BATCH_TARGET_S (at most a quarter of the read timeout) and return about
BATCH_TARGET_BYTES, capped by the configured batch size (INGEST_BATCH_SIZE) and by an even share,
among the readers, of what is left and what is still being read, the last few one each (every
reader stays busy to the end, with as few requests as that takes). Slow or large partitions
therefore keep being read one at a time.
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
        self.partitions = 0  # measured: read (or failed) in finished batches
        self.seconds = 0.0
        self.bytes = 0
        self.handed_out = 0  # partitions in the batches sized so far

    def record(self, partitions: int, read_s: float, table_bytes: int) -> None:
        """Add a finished batch: how many partitions it read, in how long, returning how much."""
        self.partitions += partitions
        self.seconds += read_s
        self.bytes += table_bytes

    def next_size(self, remaining: int) -> int:
        """Return the next batch's size (taken as handed out): 1 for each reader's probe until
        something was measured, 0 (wait for a batch to end) once every reader has one."""
        if not self.partitions:
            if self.handed_out >= self.readers or remaining <= 0:
                return 0
            self.handed_out += 1
            return 1
        by_time = self.target_s * self.partitions / max(self.seconds, 1e-6)
        by_bytes = BATCH_TARGET_BYTES * self.partitions / max(self.bytes, 1)
        being_read = max(0, self.handed_out - self.partitions)
        # The last few go one per request, so no reader waits for another's batch to end.
        last = remaining <= self.readers
        share = 1 if last else math.ceil((remaining + being_read) / self.readers)
        size = max(1, min(self.limit, share, remaining, int(by_time), int(by_bytes)))
        self.handed_out += size
        return size
