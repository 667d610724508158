"""Typed request and response bodies of the HTTP API (they make its OpenAPI schema)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ninja import Schema
from pydantic import Field


class ErrorOut(Schema):
    type: str
    message: str


class CredentialFieldOut(Schema):
    name: str
    secret: bool
    value: str  # "" for a secret field: its value never leaves the server


class CredentialsOut(Schema):
    kind: str  # none, fields, text (one secret value) or unreadable
    fields: list[CredentialFieldOut]


class ConnectionOut(Schema):
    slug: str
    name: str
    description: str
    owner: str | None
    packages: str
    library_code: str
    network_access: bool
    can_use: bool
    credentials: CredentialsOut
    connectors: list[str]
    created_at: datetime
    updated_at: datetime


class ConnectorOut(Schema):
    slug: str
    name: str
    connection: str
    interface: str
    parser: str
    parser_options: dict[str, Any]
    packages: str
    code: str
    latest_version: int | None
    can_use: bool
    created_at: datetime
    updated_at: datetime


class ConnectorCreateIn(Schema):
    connection: str
    name: str
    code: str
    slug: str = ""
    interface: str = "pandas"
    parser: str = ""
    parser_options: dict[str, Any] | None = None
    packages: str = ""


class ConnectorUpdateIn(Schema):
    """Fields left out keep their saved values."""

    code: str | None = None
    interface: str | None = None
    parser: str | None = None
    parser_options: dict[str, Any] | None = None
    packages: str | None = None


class VersionOut(Schema):
    number: int
    interface: str
    parser: str
    parser_options: dict[str, Any]
    packages: str
    fingerprint: str
    author: str | None
    created_at: datetime


class VersionDetailOut(VersionOut):
    code: str


class PreviewIn(Schema):
    """Unsaved code and settings to preview (left out: the saved ones)."""

    code: str | None = None
    interface: str | None = None
    parser: str | None = None
    parser_options: dict[str, Any] | None = None
    packages: str | None = None
    object: dict[str, Any] | None = None
    limit: int | None = Field(None, ge=1, le=10_000)
    # At most the server's bounds (PREVIEW_MAX_OBJECTS, PREVIEW_TIMEOUT_S): 400 above them.
    object_limit: int | None = Field(None, ge=1)
    timeout_s: float | None = Field(None, gt=0)


class PreviewOut(Schema):
    """The same object as `manage.py preview --json`."""

    ok: bool
    action: str
    result: Any = None
    logs: str
    error: dict[str, Any] | None = None
    duration_ms: int | None = None
    isolation: str


class IngestIn(Schema):
    dry_run: bool = False
    allow_deletes: bool = False
    engine: str = "sandbox"


class RunOut(Schema):
    id: int
    connector: str
    kind: str
    status: str
    dry_run: bool
    engine: str
    user: str | None
    code_version: int | None
    parameters: dict[str, Any]
    error: dict[str, Any] | None = None
    enqueued_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_ms: int | None = None
    partitions_total: int
    partitions_done: int
    partitions_failed: int
    partitions_skipped: int
    rows_written: int
    bytes_written: int


class RunDetailOut(RunOut):
    result: Any = None
    logs: str
    progress: dict[str, Any] | None = None


class CancelOut(Schema):
    cancelled: bool
    run: RunOut


class PartitionOut(Schema):
    id: int
    name: str
    fingerprint: str
    row_count: int
    bytes: int
    columns: Any = None  # the partition's schema
    run_id: int | None = None
    updated_at: datetime


class CredentialFieldIn(Schema):
    """One credential field to set, add or remove (`value` None keeps the stored value)."""

    name: str
    value: str | None = None
    secret: bool | None = None  # None: keep the field's setting (a new field: by its name)
    remove: bool = False


class ConnectionCreateIn(Schema):
    """Credentials are write-only: the whole string (`credentials`) or fields."""

    name: str
    slug: str = ""
    description: str = ""
    packages: str = ""
    library_code: str = ""
    network_access: bool = True
    credentials: str = ""
    credential_fields: list[CredentialFieldIn] = []


class ConnectionUpdateIn(Schema):
    """Fields left out keep their values; `credentials` "" clears them (owner and staff only,
    as network access)."""

    name: str | None = None
    description: str | None = None
    packages: str | None = None
    library_code: str | None = None
    network_access: bool | None = None
    credentials: str | None = None
    credential_fields: list[CredentialFieldIn] = []


class TestsIn(Schema):
    max_objects: int | None = Field(None, ge=1)  # stop the `objects` fixture's listing here
    timeout_s: float | None = Field(None, gt=0)


class TestOut(Schema):
    name: str
    outcome: str  # passed, failed or error
    message: str = ""
    duration_ms: int | None = None
    logs: str = ""
    line: int | None = None
    expression: str | None = None  # a failed assert's test
    left: str | None = None  # a failed comparison's values, as pytest shows them
    right: str | None = None
    traceback: str | None = None


class TestsOut(Schema):
    """The same object as `manage.py test_connector --json`."""

    ok: bool
    tests: list[TestOut]
    total: int
    passed: int
    failed: int
    errors: int
    error: dict[str, Any] | None = None
    logs: str
    duration_ms: int | None = None
    run: int


class ScheduleIn(Schema):
    """Either `cron` (five fields, in `timezone`) or `every` (30s, 15m, 2h, 1d)."""

    cron: str | None = None
    every: str | None = None
    timezone: str | None = None  # None keeps the schedule's timezone (UTC for a new one)


class ScheduleLastRunOut(Schema):
    id: int
    status: str
    enqueued_at: str | None = None


class ScheduleOut(Schema):
    """The same object as one entry of `manage.py schedule --list --json`."""

    slug: str
    schedule: str
    cron: str | None = None
    interval_s: int | None = None
    timezone: str
    enabled: bool
    next_run: str | None = None
    last_run: ScheduleLastRunOut | None = None


class SharingIn(Schema):
    """Group names; a list left out keeps its groups, [] shares with nobody at that level."""

    use: list[str] | None = None
    view: list[str] | None = None


class SharingOut(Schema):
    use: list[str]  # groups whose members may edit, preview and ingest (and read credentials)
    view: list[str]  # groups whose members may only look
