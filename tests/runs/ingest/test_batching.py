"""Batch sizing and the run's logs (connector_engine.ingest), as the sandbox engine uses them."""

from __future__ import annotations

from connector_engine.ingest.batching import BATCH_TARGET_BYTES, BATCH_TARGET_S, BatchSizer
from connector_engine.ingest.run_logs import RunLogs


def test_the_sizer_starts_alone_and_grows_from_what_it_measured():
    sizer = BatchSizer(limit=64, readers=2, timeout_s=600)
    assert [sizer.next_size(1000), sizer.next_size(999)] == [1, 1]  # a probe per reader
    assert sizer.next_size(998) == 0  # then nothing until one is measured
    sizer.record(1, read_s=0.05, table_bytes=50_000)
    assert sizer.next_size(998) == int(BATCH_TARGET_S / 0.05)
    sizer.record(1 + 40, read_s=0.25, table_bytes=41 * 50_000)
    assert sizer.next_size(958) == 64  # capped by INGEST_BATCH_SIZE
    sizer.record(64, read_s=0.3, table_bytes=64 * 50_000)
    assert sizer.next_size(40) == 20  # an even share of what is left keeps both readers busy
    assert sizer.next_size(20) == 20  # ... counting what is still being read
    assert sizer.next_size(1) == 1


def test_a_few_large_partitions_take_a_request_per_reader():
    # 12 partitions, 2 readers: two probes, then the other 10 in two batches (each request
    # builds the connector's context once), not in ever smaller ones.
    sizer = BatchSizer(limit=64, readers=2, timeout_s=600)
    remaining, sizes = 12, []
    for _ in range(2):
        sizes.append(sizer.next_size(remaining))
        remaining -= sizes[-1]
    sizer.record(1, read_s=0.2, table_bytes=1_000_000)
    while remaining:
        sizes.append(sizer.next_size(remaining))
        remaining -= sizes[-1]
    assert sizes == [1, 1, 6, 4]


def test_the_sizer_keeps_slow_or_large_partitions_alone():
    slow = BatchSizer(limit=64, readers=2, timeout_s=600)
    slow.record(1, read_s=30.0, table_bytes=0)
    assert slow.next_size(1000) == 1
    large = BatchSizer(limit=64, readers=2, timeout_s=600)
    large.record(1, read_s=0.01, table_bytes=BATCH_TARGET_BYTES)
    assert large.next_size(1000) == 1
    short_timeout = BatchSizer(limit=64, readers=2, timeout_s=1.0)
    short_timeout.record(1, read_s=0.05, table_bytes=0)
    assert short_timeout.next_size(1000) == 5  # batches take a quarter of the timeout at most


def test_the_run_logs_keep_sections_under_headers_up_to_a_size():
    logs = RunLogs(limit=60)
    logs.add("list_objects", "listed 3\n")
    logs.add("partition a", "")  # no output: no section
    logs.add("partition b", "x" * 100)
    text = logs.text()
    assert text.startswith("--- list_objects ---\nlisted 3\n--- partition b ---\nxxx")
    assert "partition a" not in text
    assert text.endswith("[output cut: 91 bytes more not shown]")
