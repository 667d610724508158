"""Runs (every preview and ingest, recorded) and the partitions ingests commit."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from connections.models import CodeVersion, Connector
from connector_engine.protocol import Action, ErrorType, IngestEngine, make_error

# What a run did: one of the engine's preview actions, or an ingest.
RunKind = models.TextChoices(
    "RunKind",
    [(action.name, (action.value, action.label)) for action in Action]
    + [("INGEST", ("ingest", "Ingest"))],
)
Engine = models.TextChoices(
    "Engine", [(engine.name, (engine.value, engine.label)) for engine in IngestEngine]
)


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"
    TIMED_OUT = "timed_out", "Timed out"
    # The process executing the run died or was stopped (kill -9, reboot, worker shutdown):
    # what it committed stays, the next ingest converges.
    INTERRUPTED = "interrupted", "Interrupted"


FINISHED_STATUSES = (
    RunStatus.SUCCEEDED,
    RunStatus.FAILED,
    RunStatus.CANCELLED,
    RunStatus.TIMED_OUT,
    RunStatus.INTERRUPTED,
)
ACTIVE_STATUSES = (RunStatus.QUEUED, RunStatus.RUNNING)
# Ingest runs that write (dry runs only list and plan).
WRITING_RUNS = Q(dry_run=False)


class StructuredError(models.Model):
    """Where a run or a partition job failed: the engine's error shape, stored as fields.

    The one place that maps the error shape (connector_engine.protocol.make_error) onto model
    fields and back.
    """

    error_type = models.CharField(max_length=100, blank=True)
    error_message = models.TextField(blank=True)
    error_function = models.CharField(max_length=200, blank=True)
    error_line = models.PositiveIntegerField(null=True, blank=True)
    error_file = models.CharField(max_length=20, blank=True)
    error_traceback = models.TextField(blank=True)

    class Meta:
        abstract = True

    @property
    def error(self) -> dict | None:
        """The structured error, as the engine reported it, or None."""
        if not self.error_type:
            return None
        return make_error(
            self.error_type,
            self.error_message,
            function=self.error_function or None,
            line=self.error_line,
            file=self.error_file or None,
            traceback=self.error_traceback,
        )

    @staticmethod
    def error_fields(error: dict | None) -> dict:
        """The model fields of an error (all blank for None): for save() and update()."""
        error = error or {}
        return {
            "error_type": error.get("type") or "",
            "error_message": error.get("message") or "",
            "error_function": error.get("function") or "",
            "error_line": error.get("line"),
            "error_file": error.get("file") or "",
            "error_traceback": error.get("traceback") or "",
        }

    def set_error(self, error: dict | None) -> None:
        """Copy an error onto this row's fields (the caller saves)."""
        for name, value in self.error_fields(error).items():
            setattr(self, name, value)


ERROR_FIELDS = list(StructuredError.error_fields(None))
# A run that failed with one of these error types ends with this status instead of "failed".
STATUS_FOR_ERROR = {ErrorType.TIMEOUT: RunStatus.TIMED_OUT}


class Run(StructuredError):
    """One preview or ingest of a connector: what ran, how it went, what came out."""

    connector = models.ForeignKey(Connector, on_delete=models.CASCADE, related_name="runs")
    # Null when the run used unsaved editor code; code_fingerprint still says what ran.
    code_version = models.ForeignKey(
        CodeVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs"
    )
    # A preview's is its code version's; an ingest's covers every input that decides its output
    # (connector_engine.ingest.inputs), whose hashes `inputs` keeps: {input name: hash}.
    code_fingerprint = models.CharField(max_length=64, blank=True)
    inputs = models.JSONField(default=dict, blank=True)
    kind = models.CharField(max_length=10, choices=RunKind)
    status = models.CharField(max_length=12, choices=RunStatus, default=RunStatus.QUEUED)
    parameters = models.JSONField(default=dict, blank=True)
    # Ingests only: a dry run lists and plans, and writes nothing; where partitions are read.
    dry_run = models.BooleanField(default=False)
    engine = models.CharField(max_length=10, choices=Engine, default=Engine.SANDBOX)
    result = models.JSONField(null=True, blank=True)
    logs = models.TextField(blank=True)
    isolation = models.CharField(max_length=200, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    enqueued_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    # Ingest progress and liveness (previews leave them at their defaults). Counters cover
    # partition jobs (reads and deletes); skipped partitions are counted separately.
    partitions_total = models.PositiveIntegerField(default=0)
    partitions_done = models.PositiveIntegerField(default=0)
    partitions_failed = models.PositiveIntegerField(default=0)
    partitions_skipped = models.PositiveIntegerField(default=0)
    rows_written = models.BigIntegerField(default=0)
    bytes_written = models.BigIntegerField(default=0)
    # "host:pid" of the process executing the run, and when it last said it was alive.
    executor = models.CharField(max_length=200, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-enqueued_at", "-id"]
        indexes = [
            models.Index(fields=["connector", "-enqueued_at"], name="run_connector_recent"),
            models.Index(
                fields=["enqueued_at"], name="run_queued", condition=Q(status=RunStatus.QUEUED)
            ),
            # Counting running previews against the concurrency caps (runs.services).
            models.Index(
                fields=["started_at"], name="run_running", condition=Q(status=RunStatus.RUNNING)
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} of {self.connector} #{self.pk}"

    @property
    def kind_label(self) -> str:
        """The kind as run lists show it: an ingest that only planned (a dry run) is a "Plan"."""
        return "Plan" if self.dry_run else self.get_kind_display()

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED_STATUSES

    def preview_json(self) -> dict:
        """The preview's outcome in the CLI's JSON shape."""
        return {
            "ok": self.status == RunStatus.SUCCEEDED,
            "action": self.kind,
            "result": self.result,
            "logs": self.logs,
            "error": self.error,
            "duration_ms": self.duration_ms,
            "isolation": self.isolation,
        }

    def tests_json(self) -> dict:
        """A test run's outcome in the CLI's JSON shape (`manage.py test_connector --json`)."""
        result = self.result if isinstance(self.result, dict) else {}
        return {
            "ok": self.status == RunStatus.SUCCEEDED,
            "tests": result.get("tests") or [],
            **{key: result.get(key, 0) for key in ("total", "passed", "failed", "errors")},
            "error": self.error,
            "logs": self.logs,
            "duration_ms": self.duration_ms,
            "run": self.pk,
        }


class Partition(models.Model):
    """A committed partition of a connector's ingested data, stored as one Parquet file."""

    connector = models.ForeignKey(Connector, on_delete=models.CASCADE, related_name="partitions")
    name = models.CharField(max_length=1024)
    fingerprint = models.TextField()
    # The code fingerprint of the ingest that wrote it (Run.code_fingerprint): a change re-reads it.
    code_fingerprint = models.CharField(max_length=64)
    row_count = models.BigIntegerField(default=0)
    bytes = models.BigIntegerField(default=0)
    schema = models.JSONField(default=list, blank=True)
    storage_path = models.CharField(max_length=2048)
    run = models.ForeignKey(
        Run, null=True, blank=True, on_delete=models.SET_NULL, related_name="written_partitions"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["connector", "name"]
        constraints = [
            models.UniqueConstraint(fields=["connector", "name"], name="unique_partition_name"),
        ]

    def __str__(self) -> str:
        return f"{self.connector} / {self.name}"


class JobAction(models.TextChoices):
    READ = "read", "Read"
    DELETE = "delete", "Delete"


class JobStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class PartitionJob(StructuredError):
    """What one ingest did (or tried) to one partition: read it or delete it.

    Unchanged partitions get no job (a run over a million unchanged objects would otherwise
    write a million rows); the run counts them in `partitions_skipped`.
    """

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="partition_jobs")
    name = models.CharField(max_length=1024)
    fingerprint = models.TextField(blank=True)
    action = models.CharField(max_length=10, choices=JobAction)
    # Why it is read ("new", "fingerprint changed", "library code changed", "failed last time":
    # connector_engine.ingest.planner) or deleted ("vanished").
    reason = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=10, choices=JobStatus, default=JobStatus.PENDING)
    rows = models.BigIntegerField(null=True, blank=True)
    bytes = models.BigIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    logs = models.TextField(blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run", "id"]
        indexes = [models.Index(fields=["run", "status"], name="partition_job_run_status")]

    def __str__(self) -> str:
        return f"{self.get_action_display()} {self.name} ({self.status})"


class Schedule(models.Model):
    """When the worker queues an ingest of a connector: a cron expression or an interval.

    `next_run` is stored (runs.schedules computes it) so the worker finds due schedules with one
    indexed query; `last_run` is the last ingest a schedule queued.
    """

    connector = models.OneToOneField(Connector, on_delete=models.CASCADE, related_name="schedule")
    cron = models.CharField(max_length=200, blank=True, help_text="e.g. 0 6 * * 1-5")
    interval_s = models.PositiveIntegerField(null=True, blank=True)
    timezone = models.CharField(max_length=64, default="UTC")
    enabled = models.BooleanField(default=True)
    next_run = models.DateTimeField(null=True, blank=True)
    last_run = models.ForeignKey(
        Run, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["connector__slug"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(cron="") & Q(interval_s__gt=0)) | (~Q(cron="") & Q(interval_s=None)),
                name="schedule_cron_or_interval",
            ),
        ]
        indexes = [
            models.Index(fields=["next_run"], name="schedule_due", condition=Q(enabled=True)),
        ]

    def __str__(self) -> str:
        return f"{self.connector.slug}: {self.describe()}"

    def describe(self) -> str:
        """The schedule as people write it: "cron 0 6 * * *" or "every 15m"."""
        if self.cron:
            return f"cron {self.cron}"
        return f"every {format_interval(self.interval_s or 0)}"


INTERVAL_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def format_interval(seconds: int) -> str:
    """Seconds in the largest unit that divides them: 900 → "15m"."""
    for unit, size in INTERVAL_UNITS.items():
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


class WorkerHeartbeat(models.Model):
    """A running queue worker (`manage.py worker`): who it is and when it last said so.

    The worker writes its row when it starts, beats every WORKER_HEARTBEAT_S and deletes it when
    it exits cleanly; a row silent for WORKER_STALE_AFTER_S (or whose process is gone from this
    host) is a dead worker, whose task rows the others finish (runs.ingest.recovery).
    """

    # The id django-tasks-db records in a task's worker_ids when this worker claims it.
    worker_id = models.CharField(max_length=64, unique=True)
    hostname = models.CharField(max_length=255)
    pid = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    beat_at = models.DateTimeField()

    class Meta:
        ordering = ["started_at"]

    def __str__(self) -> str:
        return f"worker {self.worker_id} ({self.hostname}:{self.pid})"
