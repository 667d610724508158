"""Pages for runs: preview fragments for the editor, run history, one run."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from connections.selectors import (
    can_use,
    connections_for_user,
    connector_for_user,
    shown_credentials,
)
from connector_engine.protocol import ErrorType, IngestEngine
from runs import charts, selectors, services, tasks
from runs.forms import PREVIEW_ACTIONS, PreviewForm
from runs.ingest import services as ingest_services
from runs.models import Partition, Run, RunKind
from runs.schedules import ScheduleError, schedule_off, schedule_parts, schedule_set
from runs.templatetags.schedule_tags import connector_schedule_context
from runs.timing import server_timing
from runs.tree import listing_parent, tree_context


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """List the user's connections, their connectors and recent runs."""
    return render(
        request,
        "runs/home.html",
        {
            "connections": connections_for_user(request.user),
            "runs": selectors.recent_runs_for_user(request.user)[:20],
        },
    )


@require_POST
def preview(request: HttpRequest, slug: str, action: str) -> HttpResponse:
    """Run a preview of the editor's current code and return its result panel."""
    connector = connector_for_user(request.user, slug, use=True)
    if action not in PREVIEW_ACTIONS:
        return HttpResponse(f"Unknown preview {action!r}.", status=404)
    form = PreviewForm(request.POST)
    if not form.is_valid():
        return render(request, "runs/_form_errors.html", {"form": form}, status=400)
    data = form.cleaned_data
    run = services.preview_run(
        connector=connector,
        action=action,
        user=request.user,
        code=data["code"],
        interface=data["interface"],
        parser=data["parser"],
        parser_options=data["parser_options"],
        # The editor's packages, saved or not (a client that sends none: the saved ones).
        packages=data["packages"] if "packages" in request.POST else None,
        object=data["object"],
        row_limit=data["limit"],
        max_objects=data["object_limit"],
        timeout_s=data["timeout"],
        wait_for_environment=False,  # builds are the worker's: never in a web request
    )
    # Refused because too many previews are running: 429, with the reason in the result panel.
    status = 429 if run.error_type == ErrorType.TOO_MANY_RUNS else 200
    if action == RunKind.LIST and data["object"]:
        # A prefix was clicked: answer with its children only, for the lazy tree.
        context = tree_context(run, listing_parent(run))
        response = render(request, "runs/_tree_children.html", context, status=status)
        return _preview_answer(response, run)
    context = {"run": run, **tree_context(run, whole=True)}
    if action == RunKind.CONTEXT:
        # Beside the context: the connection's fields as anyone who sees it sees them (a
        # secret one by name only).
        context["credentials"] = shown_credentials(connector.connection)
    response = render(request, "runs/_result.html", context, status=status)
    return _preview_answer(response, run)


def _preview_answer(response: HttpResponse, run: Run) -> HttpResponse:
    """Tell the page a run was recorded (the editor's recent runs refresh on this event) and
    where the time went (Server-Timing: the run's phases, then rendering)."""
    response["HX-Trigger"] = "runs-changed"
    timer = getattr(run, "timer", None)
    if timer is not None:
        timer.mark("render")
        response["Server-Timing"] = server_timing(timer.phases)
    return response


@require_GET
def run_tree(request: HttpRequest, run_id: int) -> HttpResponse:
    """The next page of one level of a listing run's tree ("show more"), from what it stored."""
    run = _run_for_user(request, run_id)
    if run.kind != RunKind.LIST:
        return HttpResponse("Only a listing has a tree.", status=404)
    try:
        offset = int(request.GET.get("offset", 0))
    except ValueError:
        return HttpResponse("The offset must be a number.", status=400)
    context = tree_context(run, request.GET.get("parent"), offset=offset)
    return render(request, "runs/_tree_nodes.html", context)


@require_GET
def connector_recent_runs(request: HttpRequest, slug: str) -> HttpResponse:
    """The editor's recent runs table (refreshed after each preview)."""
    connector = connector_for_user(request.user, slug)
    runs = connector.runs.select_related("user", "code_version")[:10]
    return render(request, "runs/_recent_runs.html", {"connector": connector, "runs": runs})


@require_GET
def connector_runs(request: HttpRequest, slug: str) -> HttpResponse:
    """A connector's run history."""
    connector = connector_for_user(request.user, slug)
    runs = connector.runs.select_related("user", "code_version")[:200]
    return render(request, "runs/connector_runs.html", {"connector": connector, "runs": runs})


@require_GET
def run_detail(request: HttpRequest, run_id: int) -> HttpResponse:
    """Show one run: its parameters, result, logs and error."""
    run = _run_for_user(request, run_id)
    context = {"run": run, **tree_context(run, listing_parent(run), whole=True)}
    if run.kind == RunKind.INGEST:
        context |= ingest_progress_context(run, request.user)
    return render(request, "runs/detail.html", context)


def _run_for_user(request: HttpRequest, run_id: int, *, use: bool = False) -> Run:
    """The run, if the user may see its connector (with `use`: act on it): 404 when missing,
    else 403."""
    run = get_object_or_404(
        Run.objects.select_related("connector", "code_version", "user"), pk=run_id
    )
    connector_for_user(request.user, run.connector.slug, use=use)
    return run


# ---------------------------------------------------------------- ingests


@require_POST
def ingest_start(request: HttpRequest, slug: str) -> HttpResponse:
    """Queue an ingest of the connector's saved code and show its run ("engine": spark scales
    the reads out on Spark)."""
    connector = connector_for_user(request.user, slug, use=True)
    engine = request.POST.get("engine") or IngestEngine.SANDBOX
    try:
        run = tasks.ingest_enqueue(connector=connector, user=request.user, engine=engine)
    except ingest_services.IngestAlreadyActive as active:
        messages.info(request, "An ingest of this connector is already queued or running.")
        run = active.run
    except ingest_services.InvalidIngestOption as exc:
        messages.error(request, str(exc))
        return redirect("connector_editor", slug=connector.slug)
    return redirect("runs:detail", run_id=run.pk)


@require_POST
def schedule_update(request: HttpRequest, slug: str) -> HttpResponse:
    """Set or turn off the connector's schedule; answer the editor's schedule block."""
    connector = connector_for_user(request.user, slug, use=True)
    entered = request.POST.get("schedule", "").strip()
    error = ""
    if request.POST.get("schedule_action") == "off":
        schedule_off(connector=connector)
        entered = ""
    else:
        tz = request.POST.get("schedule_timezone", "").strip() or None
        try:
            schedule_set(connector=connector, tz=tz, **schedule_parts(entered))
        except ScheduleError as exc:
            error = str(exc)
    context = connector_schedule_context(connector, can_use=True, error=error, entered=entered)
    return render(request, "runs/_schedule.html", context)


@require_POST
def ingest_delete_anyway(request: HttpRequest, run_id: int) -> HttpResponse:
    """Start a new ingest of a run's connector that may delete what the deletion guard kept."""
    run = _run_for_user(request, run_id, use=True)
    if run.error_type != ErrorType.DELETION_GUARD:
        messages.error(request, "Only an ingest the deletion guard stopped can delete anyway.")
        return redirect("runs:detail", run_id=run.pk)
    try:
        run = tasks.ingest_enqueue(
            connector=run.connector, user=request.user, engine=run.engine, allow_deletes=True
        )
    except ingest_services.IngestAlreadyActive as active:
        messages.info(request, "An ingest of this connector is already queued or running.")
        run = active.run
    except ingest_services.InvalidIngestOption as exc:
        messages.error(request, str(exc))
    return redirect("runs:detail", run_id=run.pk)


@require_POST
def ingest_plan(request: HttpRequest, slug: str) -> HttpResponse:
    """What the next ingest will do: list in the sandbox and compare, writing nothing."""
    connector = connector_for_user(request.user, slug, use=True)
    plan = ingest_services.ingest_plan(connector=connector)
    return render(request, "runs/_ingest_plan.html", {"plan": plan.to_dict()})


@require_POST
def run_cancel(request: HttpRequest, run_id: int) -> HttpResponse:
    """Cancel a queued or running ingest; what was committed stays."""
    run = _run_for_user(request, run_id, use=True)
    if not ingest_services.ingest_cancel(run=run):
        messages.info(request, "The run had already finished.")
    return redirect("runs:detail", run_id=run.pk)


@require_GET
def run_progress(request: HttpRequest, run_id: int) -> HttpResponse:
    """The live part of an ingest's page: progress, partition jobs and the chart (polled)."""
    run = _run_for_user(request, run_id)
    context = ingest_progress_context(run, request.user)
    return render(request, "runs/_ingest_progress.html", context)


def ingest_progress_context(run: Run, user) -> dict:
    return {
        "run": run,
        "progress": selectors.run_progress(run),
        "jobs": selectors.partition_jobs(run)[:500],
        "chart": charts.ingest_charts(selectors.partition_job_chart(run)),
        # Stopped by the deletion guard: who may run code on the connection may delete anyway.
        "may_delete_anyway": run.error_type == ErrorType.DELETION_GUARD
        and can_use(user, run.connector.connection),
    }


@require_GET
def connector_partitions(request: HttpRequest, slug: str) -> HttpResponse:
    """A connector's committed partitions and their totals."""
    connector = connector_for_user(request.user, slug)
    return render(
        request,
        "runs/_partitions.html",
        {
            "connector": connector,
            "partitions": selectors.committed_partitions(connector)[:1000],
            "totals": selectors.partition_totals(connector),
            "active": selectors.active_ingest(connector),
        },
    )


@require_GET
def partition_rows(request: HttpRequest, slug: str, partition_id: int) -> HttpResponse:
    """The first rows of a committed partition, read from its Parquet file."""
    connector = connector_for_user(request.user, slug)
    partition = get_object_or_404(Partition, pk=partition_id, connector=connector)
    preview = selectors.partition_preview(partition, limit=100)
    return render(
        request, "runs/_partition_rows.html", {"partition": partition, "preview": preview}
    )
