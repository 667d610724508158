"""Package files uploaded to connections and the package environments built from them."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.db import models

from connections.models import Connection


class PackageFile(models.Model):
    """A wheel or sdist uploaded to a connection: installed into its connectors' environments.

    The file lives at `storage_path` (under DATA_DIR, never served over the web), named by its
    content hash so replacing a file never changes the bytes an existing environment was built
    from.
    """

    connection = models.ForeignKey(
        Connection, on_delete=models.CASCADE, related_name="package_files"
    )
    filename = models.CharField(max_length=255)
    sha256 = models.CharField(max_length=64)
    size_bytes = models.BigIntegerField()
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["connection", "filename"]
        constraints = [
            models.UniqueConstraint(
                fields=["connection", "filename"], name="unique_package_file_name"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.connection.name} / {self.filename}"

    @property
    def storage_path(self) -> Path:
        return Path(settings.DATA_DIR) / "package-files" / self.sha256 / self.filename


class EnvironmentStatus(models.TextChoices):
    BUILDING = "building", "building"
    READY = "ready", "ready"
    FAILED = "failed", "failed"


class Environment(models.Model):
    """A package environment: the record of one pip-built directory under ENVIRONMENTS_DIR.

    The directory is the truth about whether it is usable (connector_engine.environments.store);
    this row is what pages show and what pruning reads (last_used_at). Environments are shared
    by every connector whose requirement set hashes to the same key.
    """

    key = models.CharField(max_length=64, unique=True)
    status = models.CharField(max_length=10, choices=EnvironmentStatus)
    python = models.CharField(max_length=40)
    requirements = models.JSONField(default=list)  # normalised, sorted lines
    files = models.JSONField(default=list)  # [{"name", "sha256"}]
    packages = models.JSONField(default=list)  # installed: [[name, version]]
    error = models.TextField(blank=True)  # pip's error lines of a failed build
    build_log = models.TextField(blank=True)
    size_bytes = models.BigIntegerField(null=True, blank=True)
    build_seconds = models.FloatField(null=True, blank=True)
    build_started_at = models.DateTimeField(null=True, blank=True)
    built_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-last_used_at", "-created_at"]

    def __str__(self) -> str:
        return f"environment {self.short_key} ({self.status})"

    @property
    def short_key(self) -> str:
        return self.key[:12]
