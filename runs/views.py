"""Pages for runs: preview fragments for the editor, run history, one run."""

from __future__ import annotations

import json

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET, require_POST

from connections.forms import PreviewForm
from connections.selectors import connector_for_user
from runs import services
from runs.models import Run, RunKind

PREVIEW_ACTIONS = {RunKind.CONTEXT, RunKind.LIST, RunKind.READ, RunKind.SCHEMA}


@require_POST
def preview(request: HttpRequest, slug: str, action: str) -> HttpResponse:
    """Run a preview of the editor's current code and return its result panel."""
    connector = connector_for_user(request.user, slug)
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
        object=data["object"],
        row_limit=data["limit"],
    )
    if action == RunKind.LIST and data["object"]:
        # A prefix was clicked: answer with its children only, for the lazy tree.
        return render(request, "runs/_tree_children.html", tree_context(run, data["object"]))
    return render(request, "runs/_result.html", {"run": run, **tree_context(run, None)})


def tree_context(run, prefix: dict | None) -> dict:
    """The objects at the top level of a listing, with problems marked on their items.

    A full listing's top level is the root (parent None); an expansion's is the clicked
    prefix's children. Deeper levels are fetched when a prefix is clicked.
    """
    top_parent = prefix.get("name") if prefix else None
    result = run.result or {}
    objects = result.get("objects", [])
    flagged = {
        problem["object"].get("name")
        for problem in result.get("problems", [])
        if isinstance(problem.get("object"), dict)
    }
    nodes = [
        {
            **item,
            "meta_json": json.dumps(item.get("metadata", item)),
            "problem": item["name"] in flagged,
            # A full listing knows how many children each prefix has; an expansion does not.
            "children": None
            if prefix is not None
            else sum(1 for other in objects if other["parent"] == item["name"]),
        }
        for item in objects
        if item["parent"] == top_parent
    ]
    return {"nodes": nodes, "run": run}


@require_GET
def connector_runs(request: HttpRequest, slug: str) -> HttpResponse:
    """A connector's run history."""
    connector = connector_for_user(request.user, slug)
    runs = connector.runs.select_related("user", "code_version")[:200]
    return render(request, "runs/connector_runs.html", {"connector": connector, "runs": runs})


@require_GET
def run_detail(request: HttpRequest, run_id: int) -> HttpResponse:
    """Show one run: its parameters, result, logs and error."""
    run = get_object_or_404(
        Run.objects.select_related("connector", "code_version", "user"), pk=run_id
    )
    connector_for_user(request.user, run.connector.slug)  # 403 unless the user may see it
    return render(request, "runs/detail.html", {"run": run, **tree_context(run, None)})
