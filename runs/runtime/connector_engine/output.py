"""Cap what user code and tools print: one size rule and one marker for what was cut.

Limits count UTF-8 bytes. What is cut is replaced by one line, `cut_marker(dropped_bytes)`:
"[output cut: 3.0 MB more not shown]", after the kept head or before the kept tail.
"""

from __future__ import annotations

from typing import Literal


def human_size(size: int) -> str:
    """Return a size like '512 bytes', '3.4 kB' or '12.3 MB'."""
    if size < 1000:
        return f"{size} bytes"
    if size < 1000 * 1000:
        return f"{size / 1000:.1f} kB"
    return f"{size / 1000 / 1000:.1f} MB"


def cut_marker(dropped_bytes: int) -> str:
    """Return the line that stands for `dropped_bytes` of output that was cut."""
    return f"[output cut: {human_size(dropped_bytes)} more not shown]"


def cap_text(text: str, limit: int, keep: Literal["head", "tail"] = "head") -> str:
    """Return at most `limit` bytes of text (its start or its end) and the marker for the rest."""
    data = text.encode("utf-8", errors="replace")
    limit = max(int(limit), 0)
    if len(data) <= limit:
        return text
    marker = cut_marker(len(data) - limit)
    # A character split by the cut is dropped rather than shown as a replacement character.
    if keep == "head":
        return data[:limit].decode("utf-8", errors="ignore") + "\n" + marker
    return marker + "\n" + data[len(data) - limit :].decode("utf-8", errors="ignore")


class CappedOutput:
    """Collect a stream of output chunks: keep the first `limit` bytes, count the rest."""

    def __init__(self, limit: int) -> None:
        self.limit = max(int(limit), 0)
        self.data = bytearray()
        self.dropped = 0

    def add(self, chunk: bytes) -> None:
        """Keep what fits of a chunk and count what does not."""
        room = max(self.limit - len(self.data), 0)
        self.data += chunk[:room]
        self.dropped += max(len(chunk) - room, 0)

    def text(self) -> str:
        """Return the kept output as text, followed by the marker when some was cut."""
        text = self.data.decode("utf-8", errors="replace")
        return f"{text}\n{cut_marker(self.dropped)}" if self.dropped else text
