"""The client's side of a reply: read one framed message from the supervisor's connection.

The supervisor exits after its reply; the message's frames say where it ends
(connector_engine.system.framing), so the client does not wait for that exit. A reply larger
than the caller's limit is ReplyTooLarge; a cancelled request closes the connection, which is
the supervisor's signal to kill the connector.
"""

from __future__ import annotations

import socket
import threading
import time

from connector_engine.system.framing import message_size

CANCEL_POLL_S = 0.05  # how often a cancellable request checks its cancel event


class ReplyTooLarge(Exception):
    """The reply grew past MAX_REPLY_BYTES: the request fails, the fork server is not at fault."""

    def __init__(self, size: int) -> None:
        super().__init__(f"a reply of more than {size} bytes")
        self.size = size


class RequestCancelled(Exception):
    """The caller cancelled the request; the connection was closed to kill its processes."""


def receive_all(conn: socket.socket, limit: int) -> bytes:
    """Read one whole message (or until the peer closes the connection).

    The supervisor exits after its reply; the message's frames say where it ends, so the
    client does not wait for that exit."""
    chunks = bytearray()
    while not complete(chunks, limit):
        chunk = conn.recv(1 << 20)
        if not chunk:
            break
        chunks += chunk
    return bytes(chunks)


def complete(chunks: bytearray, limit: int) -> bool:
    """Whether `chunks` hold a whole message; ReplyTooLarge past `limit` bytes."""
    if len(chunks) > limit:
        raise ReplyTooLarge(len(chunks))
    size = message_size(chunks)
    if size is not None and size > limit:
        raise ReplyTooLarge(size)
    return size is not None and len(chunks) >= size


def receive_cancellable(
    conn: socket.socket, limit: int, cancel: threading.Event, deadline: float
) -> bytes:
    """Read one whole message (as receive_all), giving up when `cancel` is set.

    The caller's `with` closes the socket on RequestCancelled: that hang-up is the supervisor's
    signal to kill the connector.
    """
    chunks = bytearray()
    conn.settimeout(CANCEL_POLL_S)
    while not complete(chunks, limit):
        if cancel.is_set():
            raise RequestCancelled
        if time.monotonic() >= deadline:
            raise TimeoutError
        try:
            chunk = conn.recv(1 << 20)
        except TimeoutError:
            continue
        if not chunk:
            break
        chunks += chunk
    return bytes(chunks)
