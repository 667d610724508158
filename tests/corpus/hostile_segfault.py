# A reader that crashes the interpreter by reading address 0 through ctypes.
# expect-action: read
# expect-error: KilledBySignal
# expect-message: SIGSEGV (segmentation fault)
# expect-in-logs: before the crash
import ctypes


def list_objects(context, metadata):
    yield {"name": "a", "fingerprint": "1"}


def read_pandas_dataframe(context, metadata):
    print("before the crash")
    return ctypes.string_at(0)
