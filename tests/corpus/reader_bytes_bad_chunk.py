# A bytes reader yielding an int as its second chunk.
# expect-action: read
# expect-interface: bytes
# expect-parser: csv
# expect-error: ContractError
# expect-message: an int as chunk 1


def list_objects(context, metadata):
    yield {"name": "a.csv", "fingerprint": "v1"}


def read_bytes(context, metadata):
    yield b"a,b\n"
    yield 12
