# jsonl bytes with a broken line.
# expect-action: read
# expect-interface: bytes
# expect-parser: jsonl
# expect-error: ParseError
# expect-message: Line 2 is not valid JSON


def list_objects(context, metadata):
    yield {"name": "a.jsonl", "fingerprint": "v1"}


def read_bytes(context, metadata):
    yield '{"a": 1}\n'
    yield b'{"a": \n'
