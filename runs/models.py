"""Runs (every preview and ingest, recorded) and the partitions ingests commit."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from connections.models import CodeVersion, Connector


class RunKind(models.TextChoices):
    CONTEXT = "context", "Preview context"
    LIST = "list", "List objects"
    READ = "read", "Preview partition"
    SCHEMA = "schema", "Infer schema"
    INGEST = "ingest", "Ingest"


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"
    TIMED_OUT = "timed_out", "Timed out"


FINISHED_STATUSES = (
    RunStatus.SUCCEEDED,
    RunStatus.FAILED,
    RunStatus.CANCELLED,
    RunStatus.TIMED_OUT,
)


class Run(models.Model):
    """One preview or ingest of a connector: what ran, how it went, what came out."""

    connector = models.ForeignKey(Connector, on_delete=models.CASCADE, related_name="runs")
    # Null when the run used unsaved editor code; code_fingerprint still says what ran.
    code_version = models.ForeignKey(
        CodeVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs"
    )
    code_fingerprint = models.CharField(max_length=64, blank=True)
    kind = models.CharField(max_length=10, choices=RunKind)
    status = models.CharField(max_length=10, choices=RunStatus, default=RunStatus.QUEUED)
    parameters = models.JSONField(default=dict, blank=True)
    result = models.JSONField(null=True, blank=True)
    logs = models.TextField(blank=True)
    error_type = models.CharField(max_length=100, blank=True)
    error_message = models.TextField(blank=True)
    error_function = models.CharField(max_length=200, blank=True)
    error_line = models.PositiveIntegerField(null=True, blank=True)
    error_traceback = models.TextField(blank=True)
    isolation = models.CharField(max_length=200, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    enqueued_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-enqueued_at", "-id"]
        indexes = [
            models.Index(fields=["connector", "-enqueued_at"], name="run_connector_recent"),
            models.Index(
                fields=["enqueued_at"], name="run_queued", condition=Q(status=RunStatus.QUEUED)
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} of {self.connector} #{self.pk}"

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED_STATUSES

    @property
    def error(self) -> dict | None:
        """The structured error, as the runtime reported it, or None."""
        if not self.error_type:
            return None
        return {
            "type": self.error_type,
            "message": self.error_message,
            "function": self.error_function or None,
            "line": self.error_line,
            "traceback": self.error_traceback,
        }

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


class Partition(models.Model):
    """A committed partition of a connector's ingested data, stored as one Parquet file."""

    connector = models.ForeignKey(Connector, on_delete=models.CASCADE, related_name="partitions")
    name = models.CharField(max_length=1024)
    fingerprint = models.TextField()
    # The connector's code fingerprint when this partition was written: a change re-reads it.
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
