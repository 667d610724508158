"""The user's own API tokens page: create (the secret shown once) and revoke."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from api import selectors, services


@login_required
def api_tokens(request: HttpRequest) -> HttpResponse:
    """List the user's tokens; a POST creates one and shows its secret, once."""
    new_secret = None
    if request.method == "POST":
        name = request.POST.get("name", "").strip()[:100]
        _token, new_secret = services.api_token_create(user=request.user, name=name)
    context = {"tokens": selectors.api_tokens_for_user(request.user), "new_secret": new_secret}
    return render(request, "api/tokens.html", context)


@login_required
@require_POST
def api_token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    token = selectors.api_token_for_user(request.user, token_id)
    services.api_token_revoke(token=token)
    messages.info(request, f"Token “{token.name}” revoked.")
    return redirect("api_tokens")
