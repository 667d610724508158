"""/api/v1: previews and ingests of a connector, runs, and committed partitions."""

from __future__ import annotations

from typing import Literal

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from ninja import Query, Router, Status
from ninja.errors import HttpError

from api.views.access import connector_visible, run_visible
from api.views.schemas import (
    CancelOut,
    IngestIn,
    PartitionOut,
    PreviewIn,
    PreviewOut,
    RunDetailOut,
    RunOut,
    TestsIn,
    TestsOut,
)
from connector_engine.protocol import INTERFACES, PARSERS, ErrorType
from connectors_site import engine_config
from runs import selectors, services, tasks
from runs.ingest import services as ingest_services
from runs.models import Partition, Run, RunKind

router = Router(tags=["runs"])

PreviewAction = Literal["context", "list", "read", "schema"]


def run_out(run: Run, *, detail: bool = False) -> dict:
    out = {
        "id": run.pk,
        "connector": run.connector.slug,
        "kind": run.kind,
        "status": run.status,
        "dry_run": run.dry_run,
        "engine": run.engine,
        "user": run.user.get_username() if run.user else None,
        "code_version": run.code_version.number if run.code_version else None,
        "parameters": run.parameters or {},
        "error": run.error,
        "enqueued_at": run.enqueued_at,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "duration_ms": run.duration_ms,
        "partitions_total": run.partitions_total,
        "partitions_done": run.partitions_done,
        "partitions_failed": run.partitions_failed,
        "partitions_skipped": run.partitions_skipped,
        "rows_written": run.rows_written,
        "bytes_written": run.bytes_written,
    }
    if detail:
        out["result"] = run.result
        out["logs"] = run.logs
        out["progress"] = selectors.run_progress(run) if run.kind == RunKind.INGEST else None
    return out


@router.post(
    "/connectors/{slug}/previews/{action}",
    response={200: PreviewOut, 429: PreviewOut},
    tags=["previews"],
)
def preview(
    request: HttpRequest,
    response: HttpResponse,
    slug: str,
    action: PreviewAction,
    payload: PreviewIn | None = None,
):
    """Preview the saved code, or the code and settings given; recorded as a run (its id in the
    X-Run-Id header). The answer is the object `manage.py preview --json` prints; 429 when too
    many previews are running."""
    connector = connector_visible(request.auth, slug, use=True)
    payload = payload or PreviewIn()
    if payload.interface is not None and payload.interface not in INTERFACES:
        raise HttpError(400, f"Unknown interface {payload.interface!r}.")
    if payload.parser and payload.parser not in PARSERS:
        raise HttpError(400, f"Unknown parser {payload.parser!r}.")
    bounds = engine_config.preview_bounds()
    if payload.object_limit is not None and payload.object_limit > bounds.max_objects:
        raise HttpError(400, f"object_limit: at most {bounds.max_objects} (PREVIEW_MAX_OBJECTS).")
    if payload.timeout_s is not None and payload.timeout_s > bounds.timeout_s:
        raise HttpError(400, f"timeout_s: at most {bounds.timeout_s:g} (PREVIEW_TIMEOUT_S).")
    run = services.preview_run(
        connector=connector,
        action=action,
        user=request.auth,
        code=payload.code,
        interface=payload.interface,
        parser=payload.parser,
        parser_options=payload.parser_options,
        packages=payload.packages,
        object=payload.object,
        row_limit=payload.limit,
        max_objects=payload.object_limit,
        timeout_s=payload.timeout_s,
        wait_for_environment=False,  # builds are the worker's: never in a web request
    )
    response["X-Run-Id"] = str(run.pk)
    status = 429 if run.error_type == ErrorType.TOO_MANY_RUNS else 200
    return Status(status, run.preview_json())


@router.post(
    "/connectors/{slug}/tests", response={200: TestsOut, 429: TestsOut}, tags=["connector tests"]
)
def connector_tests(
    request: HttpRequest, response: HttpResponse, slug: str, payload: TestsIn | None = None
):
    """Run the saved connector's test_* functions in the sandbox; recorded as a run of kind
    "test" (its id in the X-Run-Id header). The answer is the object `manage.py test_connector
    --json` prints; `ok` false when any test failed. 429 when too many runs are running."""
    connector = connector_visible(request.auth, slug, use=True)
    payload = payload or TestsIn()
    run = services.connector_tests_run(
        connector=connector,
        user=request.auth,
        max_objects=payload.max_objects,
        timeout_s=payload.timeout_s,
        wait_for_environment=False,  # builds are the worker's: never in a web request
    )
    response["X-Run-Id"] = str(run.pk)
    status = 429 if run.error_type == ErrorType.TOO_MANY_RUNS else 200
    return Status(status, run.tests_json())


@router.post("/connectors/{slug}/ingests", response={201: RunDetailOut}, tags=["ingests"])
def ingest_start(request: HttpRequest, slug: str, payload: IngestIn | None = None):
    """Queue an ingest of the saved code (`dry_run`: list and plan only; `allow_deletes`: past
    the deletion guard). 409 when one is already queued or running."""
    connector = connector_visible(request.auth, slug, use=True)
    payload = payload or IngestIn()
    try:
        run = tasks.ingest_enqueue(
            connector=connector,
            user=request.auth,
            dry_run=payload.dry_run,
            engine=payload.engine,
            allow_deletes=payload.allow_deletes,
        )
    except ingest_services.IngestAlreadyActive as active:
        raise HttpError(409, f"{active} (run {active.run.pk})") from None
    except ingest_services.InvalidIngestOption as exc:
        raise HttpError(400, str(exc)) from None
    return Status(201, run_out(run_visible(request.auth, run.pk), detail=True))


@router.get("/ingests/{run_id}", response=RunDetailOut, tags=["ingests"])
def ingest_get(request: HttpRequest, run_id: int):
    return run_out(_ingest_visible(request.auth, run_id), detail=True)


@router.get("/ingests/{run_id}/progress", response=dict, tags=["ingests"])
def ingest_progress(request: HttpRequest, run_id: int):
    """The numbers a progress bar needs (poll while the run is active)."""
    return selectors.run_progress(_ingest_visible(request.auth, run_id))


@router.post("/ingests/{run_id}/cancel", response=CancelOut, tags=["ingests"])
def ingest_cancel(request: HttpRequest, run_id: int):
    """Cancel a queued or running ingest; `cancelled` false when it had already finished."""
    run = _ingest_visible(request.auth, run_id, use=True)
    cancelled = ingest_services.ingest_cancel(run=run)
    return {"cancelled": cancelled, "run": run_out(run_visible(request.auth, run_id))}


def _ingest_visible(user, run_id: int, *, use: bool = False) -> Run:
    run = run_visible(user, run_id, use=use)
    if run.kind != RunKind.INGEST:
        raise HttpError(404, "No such ingest.")
    return run


@router.get("/runs", response=list[RunOut])
def run_list(
    request: HttpRequest,
    connector: str | None = None,
    kind: str | None = None,
    status: str | None = None,
    dry_run: bool | None = None,
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0),
):
    """Runs you may see, newest first, filtered by connector slug, kind, status, dry_run."""
    runs = selectors.recent_runs_for_user(request.auth).select_related("code_version", "user")
    if connector:
        runs = runs.filter(connector__slug=connector)
    if kind:
        runs = runs.filter(kind=kind)
    if status:
        runs = runs.filter(status=status)
    if dry_run is not None:
        runs = runs.filter(dry_run=dry_run)
    return [run_out(run) for run in runs[offset : offset + limit]]


@router.get("/runs/{run_id}", response=RunDetailOut)
def run_get(request: HttpRequest, run_id: int):
    return run_out(run_visible(request.auth, run_id), detail=True)


def partition_out(partition: Partition) -> dict:
    return {
        "id": partition.pk,
        "name": partition.name,
        "fingerprint": partition.fingerprint,
        "row_count": partition.row_count,
        "bytes": partition.bytes,
        "columns": partition.schema,
        "run_id": partition.run_id,
        "updated_at": partition.updated_at,
    }


@router.get("/connectors/{slug}/partitions", response=list[PartitionOut], tags=["partitions"])
def partition_list(request: HttpRequest, slug: str):
    """The connector's committed partitions, by name."""
    connector = connector_visible(request.auth, slug)
    return [partition_out(p) for p in selectors.committed_partitions(connector)]


@router.get("/connectors/{slug}/partitions/{partition_id}/rows", response=dict, tags=["partitions"])
def partition_rows(
    request: HttpRequest, slug: str, partition_id: int, limit: int = Query(100, ge=1, le=1000)
):
    """The first rows of a committed partition (secrets masked): `columns`, `rows`,
    `row_count`, `truncated`; or `error` when its file cannot be read."""
    connector = connector_visible(request.auth, slug)
    partition = get_object_or_404(Partition, pk=partition_id, connector=connector)
    return selectors.partition_preview(partition, limit=limit)
