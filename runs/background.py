"""Periodic work in a daemon thread while a block runs: the worker's run pruner
(runs.retention.RunPruner) and schedule ticker (runs.schedules.ScheduleTicker).

A subclass says how long to wait before each turn (`wait_s`) and what a turn does (`work`); a
turn that raises is logged and the next one retries. The thread closes its own database
connection when it stops.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import close_old_connections, connection

logger = logging.getLogger(__name__)

STOP_TIMEOUT_S = 10.0


class PeriodicWork:
    """Call `work` after every `wait_s()` seconds in a daemon thread, while `running()` lasts."""

    thread_name = "periodic-work"
    failure = "Periodic work failed; retrying later."

    def __init__(self) -> None:
        self._stop = threading.Event()

    def wait_s(self) -> float:
        raise NotImplementedError

    def work(self) -> None:
        raise NotImplementedError

    @contextmanager
    def running(self) -> Iterator[threading.Thread]:
        """Work in a daemon thread while the block runs; stop the thread when it ends."""
        self._stop.clear()
        thread = threading.Thread(target=self._loop, name=self.thread_name, daemon=True)
        thread.start()
        try:
            yield thread
        finally:
            self._stop.set()
            thread.join(timeout=STOP_TIMEOUT_S)

    def _loop(self) -> None:
        try:
            while not self._stop.wait(self.wait_s()):
                close_old_connections()
                try:
                    self.work()
                except Exception:
                    logger.exception(self.failure)
        finally:
            connection.close()  # this thread's own connection
