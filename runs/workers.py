"""The queue workers' heartbeats: register, beat, forget; which workers are alive.

Every `manage.py worker` registers a WorkerHeartbeat row under its django-tasks-db worker id
when it starts, beats every WORKER_HEARTBEAT_S in a thread (WorkerBeat) and deletes its row when
it exits cleanly. A worker is dead when its row is silent for WORKER_STALE_AFTER_S, or when it
ran on this host under a PID that no longer exists (runs.ingest.recovery acts on that).
"""

from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from runs.background import PeriodicWork
from runs.models import WorkerHeartbeat


def local_process_is_gone(host: str, pid: int) -> bool:
    """Say whether `pid` on `host` is known to be dead: only this host's processes can tell."""
    if host != socket.gethostname() or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, under another user
        return False
    return False


def worker_register(*, worker_id: str) -> WorkerHeartbeat:
    """Record this process as the worker `worker_id`, alive now."""
    now = timezone.now()
    heartbeat, _ = WorkerHeartbeat.objects.update_or_create(
        worker_id=worker_id,
        defaults={
            "hostname": socket.gethostname(),
            "pid": os.getpid(),
            "started_at": now,
            "beat_at": now,
        },
    )
    return heartbeat


def worker_beat(*, worker_id: str) -> None:
    """Say the worker is alive; register it again if another worker took it for dead."""
    if not WorkerHeartbeat.objects.filter(worker_id=worker_id).update(beat_at=timezone.now()):
        worker_register(worker_id=worker_id)


def worker_forget(*, worker_id: str) -> None:
    """Delete the worker's row: it is exiting cleanly."""
    WorkerHeartbeat.objects.filter(worker_id=worker_id).delete()


def worker_is_gone(heartbeat: WorkerHeartbeat, now: datetime) -> bool:
    """Say whether the worker behind a heartbeat row is dead."""
    if now - heartbeat.beat_at > timedelta(seconds=settings.WORKER_STALE_AFTER_S):
        return True
    return local_process_is_gone(heartbeat.hostname, heartbeat.pid)


class WorkerBeat(PeriodicWork):
    """Beat the worker's heartbeat every WORKER_HEARTBEAT_S in a daemon thread."""

    thread_name = "worker-heartbeat"
    failure = "Writing the worker's heartbeat failed; retrying."

    def __init__(self, worker_id: str) -> None:
        super().__init__()
        self.worker_id = worker_id

    def wait_s(self) -> float:
        return settings.WORKER_HEARTBEAT_S

    def work(self) -> None:
        worker_beat(worker_id=self.worker_id)
