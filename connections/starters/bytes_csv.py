"""Stream CSV bytes; the connector's parser (csv) turns them into rows."""


def list_objects(context, metadata):
    yield {"name": "sample.csv", "fingerprint": "v1", "is_prefix": False}


def read_bytes(context, metadata):
    # Yield bytes or str chunks; they are joined and parsed with the connector's parser.
    yield "id,name,score\n"
    yield "1,ada,9.5\n"
    yield b"2,grace,8.0\n"
