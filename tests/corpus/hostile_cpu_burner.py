# A reader that burns CPU past its CPU-time limit (well before the wall-clock timeout).
# expect-action: read
# expect-limits: {"cpu_s": 1, "timeout_s": 10}
# expect-error: CpuLimit
# expect-message: CPU time


def list_objects(context, metadata):
    yield {"name": "a", "fingerprint": "1"}


def read_pandas_dataframe(context, metadata):
    total = 0
    while True:
        total += 1
