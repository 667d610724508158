"""Pages for connections and connectors."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from connections.selectors import connections_for_user
from runs.selectors import recent_runs_for_user


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """List the user's connections, their connectors and recent runs."""
    return render(
        request,
        "connections/home.html",
        {
            "connections": connections_for_user(request.user),
            "runs": recent_runs_for_user(request.user)[:20],
        },
    )
