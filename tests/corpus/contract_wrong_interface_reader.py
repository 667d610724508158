# A read_bytes reader on a pandas connector.
# expect-action: read
# expect-interface: pandas
# expect-error: ContractError
# expect-message: defines read_bytes but the connector's interface is pandas


def list_objects(context, metadata):
    yield {"name": "a.csv", "fingerprint": "v1"}


def read_bytes(context, metadata):
    yield b"a\n1\n"
