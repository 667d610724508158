"""Reads of runs, scoped to what a user may see."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count, Max, QuerySet, Sum
from django.utils import timezone

from connections.models import CodeVersion, Connection, Connector
from connector_engine.masking import Masker
from connector_engine.protocol import Action
from runs import storage
from runs.bounds import result_bounded
from runs.models import (
    ACTIVE_STATUSES,
    WRITING_RUNS,
    JobAction,
    JobStatus,
    Partition,
    PartitionJob,
    Run,
    RunKind,
    RunStatus,
    WorkerHeartbeat,
)


def runs_for_user(user) -> QuerySet[Run]:
    """Runs of connectors whose connection `user` may see."""
    return Run.objects.filter(connector__connection__in=Connection.objects.visible_to(user))


def recent_runs_for_user(user) -> QuerySet[Run]:
    """The user's visible runs, newest first, with their connectors."""
    return runs_for_user(user).select_related("connector").order_by("-enqueued_at")


def code_version_for(connector: Connector, fingerprint: str) -> CodeVersion | None:
    """The connector's newest saved version with this code fingerprint, if any."""
    return (
        CodeVersion.objects.filter(connector=connector, fingerprint=fingerprint)
        .order_by("-number")
        .first()
    )


# ---------------------------------------------------------------- ingests


def ingest_runs(connector: Connector) -> QuerySet[Run]:
    """A connector's ingest runs (dry runs included), newest first."""
    return Run.objects.filter(connector=connector, kind=RunKind.INGEST).order_by("-enqueued_at")


def active_ingest(connector: Connector) -> Run | None:
    """The connector's queued or running ingest (not a dry run), if any."""
    return ingest_runs(connector).filter(status__in=ACTIVE_STATUSES).filter(WRITING_RUNS).first()


def run_progress(run: Run) -> dict[str, Any]:
    """The numbers a progress bar needs, JSON-safe (poll it while the run is active).

    `total` counts partition jobs (reads and deletes); `percent` is None until the plan is
    known. `eta_s` extrapolates the rate of finished jobs; None before the first one ends.
    """
    now = timezone.now()
    end = run.finished_at or now
    elapsed = (end - run.started_at).total_seconds() if run.started_at else 0.0
    total, done = run.partitions_total, run.partitions_done
    planned = bool((run.result or {}).get("plan")) or run.partitions_total > 0
    eta = None
    if not run.is_finished and done and total > done and elapsed > 0:
        eta = round(elapsed / done * (total - done), 1)
    return {
        "run_id": run.pk,
        "status": run.status,
        "is_finished": run.is_finished,
        "dry_run": run.dry_run,
        "planned": planned,
        "total": total,
        "done": done,
        "failed": run.partitions_failed,
        "skipped": run.partitions_skipped,
        "percent": (100.0 if total == 0 else round(100.0 * done / total, 1)) if planned else None,
        "rows": run.rows_written,
        "bytes": run.bytes_written,
        "elapsed_s": round(elapsed, 1),
        "eta_s": eta,
        "heartbeat_age_s": (
            round((now - run.heartbeat_at).total_seconds(), 1) if run.heartbeat_at else None
        ),
        "cancel_requested": run.cancel_requested_at is not None,
    }


def partition_jobs(run: Run) -> QuerySet[PartitionJob]:
    """A run's partition jobs (reads, then deletes, in plan order), without their logs."""
    return PartitionJob.objects.filter(run=run).defer("logs", "error_traceback").order_by("id")


def partition_job_chart(run: Run) -> list[dict[str, Any]]:
    """Rows and duration per finished read, in the order they were planned (for a chart)."""
    jobs = PartitionJob.objects.filter(
        run=run, action=JobAction.READ, status=JobStatus.SUCCEEDED
    ).order_by("id")
    return [
        {"name": name, "rows": rows, "duration_ms": duration_ms}
        for name, rows, duration_ms in jobs.values_list("name", "rows", "duration_ms")
    ]


def committed_partitions(connector: Connector) -> QuerySet[Partition]:
    """A connector's committed partitions (name, fingerprint, rows, bytes, updated_at...)."""
    return Partition.objects.filter(connector=connector).order_by("name")


def partition_totals(connector: Connector) -> dict[str, int]:
    """Count, rows and bytes of a connector's committed partitions."""
    totals = committed_partitions(connector).aggregate(
        partitions=Count("id"), rows=Sum("row_count"), bytes=Sum("bytes")
    )
    return {key: value or 0 for key, value in totals.items()}


def partition_preview(partition: Partition, *, limit: int = 100) -> dict[str, Any]:
    """The first `limit` rows of a committed partition, read from its Parquet file.

    Returns {"columns": [{"name", "type"}], "rows": [[...]], "row_count", "truncated"}, or
    {"error": "..."} when the file is missing or unreadable. The connection's secrets are masked
    here, for people to see (the file keeps what the source had). Cells and the whole are
    bounded as a preview's stored result is (runs.bounds), with the same marker.
    """
    try:
        preview = storage.read_partition_preview(partition.storage_path, limit=limit)
    except (OSError, ValueError) as exc:
        return {"error": f"cannot read {partition.storage_path}: {exc}"}
    connection = partition.connector.connection
    masker = Masker(
        connection.decrypted_credentials(), secret_fields=connection.secret_field_names()
    )
    return result_bounded(
        masker.value(preview),
        cell_bytes=settings.PREVIEW_MAX_CELL_BYTES,
        result_bytes=settings.PREVIEW_MAX_RESULT_BYTES,
    )


# ---------------------------------------------------------------- previews holding a sandbox

PREVIEW_KINDS = tuple(Action)


def preview_abandoned_after() -> timedelta:
    """How long a preview may stay running: it waits for its environment's build, then for a
    Spark session, then runs. One still "running" after that was left by a process that died."""
    return timedelta(
        seconds=2 * settings.PREVIEW_TIMEOUT_S + settings.ENVIRONMENT_BUILD_TIMEOUT_S + 60
    )


def running_previews(now: datetime | None = None) -> QuerySet[Run]:
    """Previews that may still hold a sandbox (the concurrency caps count them)."""
    since = (now or timezone.now()) - preview_abandoned_after()
    return Run.objects.filter(
        status=RunStatus.RUNNING, kind__in=PREVIEW_KINDS, started_at__gte=since
    )


def abandoned_previews(now: datetime | None = None) -> QuerySet[Run]:
    """Previews left "running" by a web process that died."""
    since = (now or timezone.now()) - preview_abandoned_after()
    return Run.objects.filter(
        status=RunStatus.RUNNING, kind__in=PREVIEW_KINDS, started_at__lt=since
    )


# ---------------------------------------------------------------- queue workers


def worker_status(now: datetime | None = None) -> dict[str, Any]:
    """How many queue workers are alive (a heartbeat within WORKER_STALE_AFTER_S) and when any
    worker last beat: {"alive": int, "last_beat_at": datetime | None}."""
    since = (now or timezone.now()) - timedelta(seconds=settings.WORKER_STALE_AFTER_S)
    beats = WorkerHeartbeat.objects.aggregate(last=Max("beat_at"))
    return {
        "alive": WorkerHeartbeat.objects.filter(beat_at__gte=since).count(),
        "last_beat_at": beats["last"],
    }
