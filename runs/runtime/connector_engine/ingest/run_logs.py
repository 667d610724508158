"""An ingest run's logs: what the listing and each read printed, under headers. Django-free."""

from __future__ import annotations

from connector_engine.output import CappedOutput


class RunLogs:
    """Sections of output, each under a header, kept up to `limit` bytes in all.

    What does not fit is counted and stands as one marker at the end (connector_engine.output).
    """

    def __init__(self, limit: int) -> None:
        self.output = CappedOutput(limit)

    def add(self, header: str, text: str) -> None:
        """Add one section (nothing for empty output)."""
        if text:
            self.output.add(f"--- {header} ---\n{text.rstrip()}\n".encode())

    def text(self) -> str:
        return self.output.text()
