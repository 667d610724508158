"""Length-prefixed frames on pipes and sockets: the sandbox's wire format.

A message is a JSON frame followed by one bytes frame (the Arrow IPC stream, possibly empty).
"""

from __future__ import annotations

import json
import os
import struct
from typing import Any

_HEADER = struct.Struct(">Q")
HEADER_SIZE = _HEADER.size


class FrameError(Exception):
    """A frame could not be read: the peer closed early or sent garbage."""


def encode_message(envelope: dict[str, Any], payload: bytes = b"") -> bytes:
    """Return the bytes of one JSON envelope frame followed by one payload frame."""
    body = json.dumps(envelope, default=str).encode()
    return _HEADER.pack(len(body)) + body + _HEADER.pack(len(payload)) + payload


def decode_message(data: bytes | bytearray | memoryview) -> tuple[dict[str, Any], bytes]:
    """Split a complete message into its envelope and payload."""
    view = memoryview(data)
    body, rest = _split_frame(view)
    payload, _ = _split_frame(rest)
    envelope = json.loads(bytes(body))
    if not isinstance(envelope, dict):
        raise FrameError("the envelope is not a JSON object")
    return envelope, bytes(payload)


def _split_frame(view: memoryview) -> tuple[memoryview, memoryview]:
    """Return one frame's body and the bytes after it."""
    if len(view) < HEADER_SIZE:
        raise FrameError("truncated frame header")
    (size,) = _HEADER.unpack(view[:HEADER_SIZE])
    end = HEADER_SIZE + size
    if len(view) < end:
        raise FrameError("truncated frame")
    return view[HEADER_SIZE:end], view[end:]


def message_size(data: bytes | bytearray | memoryview) -> int | None:
    """The size of the whole message at the start of `data` (envelope and payload frames), or
    None while its frame headers have not all arrived."""
    if len(data) < HEADER_SIZE:
        return None
    (body,) = _HEADER.unpack_from(data, 0)
    second = HEADER_SIZE + body
    if len(data) < second + HEADER_SIZE:
        return None
    (payload,) = _HEADER.unpack_from(data, second)
    return second + HEADER_SIZE + payload


def write_all(fd: int, data: bytes) -> None:
    """Write every byte to a file descriptor."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def read_until_eof(fd: int, limit: int) -> bytes:
    """Read from a file descriptor until EOF, refusing more than `limit` bytes."""
    chunks = bytearray()
    while True:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return bytes(chunks)
        chunks += chunk
        if len(chunks) > limit:
            raise FrameError(f"message larger than {limit} bytes")
