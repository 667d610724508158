"""Pages for runs."""

from __future__ import annotations

import json

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from runs.selectors import runs_for_user


@require_GET
def run_detail(request: HttpRequest, run_id: int) -> HttpResponse:
    """Show one run: its parameters, result, logs and error."""
    run = get_object_or_404(runs_for_user(request.user).select_related("connector"), pk=run_id)
    result_json = json.dumps(run.result, indent=2) if run.result is not None else "(none)"
    return render(request, "runs/detail.html", {"run": run, "result_json": result_json})
