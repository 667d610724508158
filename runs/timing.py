"""Where a request's time goes, for the `Server-Timing` header (browsers' developer tools and
bench/preview_latency.py show it)."""

from __future__ import annotations

import time


class PhaseTimer:
    """Milliseconds per named phase, each from the end of the one before."""

    def __init__(self) -> None:
        self.phases: dict[str, float] = {}
        self._last = time.perf_counter()

    def mark(self, name: str) -> None:
        now = time.perf_counter()
        self.phases[name] = self.phases.get(name, 0.0) + (now - self._last) * 1000
        self._last = now

    def add(self, phases: dict[str, float], prefix: str) -> None:
        """Add phases measured elsewhere (the sandbox's), named with a prefix; they are part of
        a marked phase, not on top of it."""
        for name, ms in phases.items():
            self.phases[f"{prefix}{name.removesuffix('_ms')}"] = float(ms)


def server_timing(phases: dict[str, float]) -> str:
    """The `Server-Timing` header value of the phases."""
    return ", ".join(f"{name};dur={ms:.1f}" for name, ms in phases.items())
