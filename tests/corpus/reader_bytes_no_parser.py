# A bytes connector whose parser is not set.
# expect-action: read
# expect-interface: bytes
# expect-error: ConfigurationError
# expect-message: needs a parser


def list_objects(context, metadata):
    yield {"name": "a.csv", "fingerprint": "v1"}


def read_bytes(context, metadata):
    yield b"a,b\n1,2\n"
