"""The HTTP API under /api/v1/ and the page where users manage their API tokens."""

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, JsonResponse
from django.urls import path, re_path

from api.views import tokens
from api.views.site import api

api_patterns, app_name_, namespace = api.urls
for pattern in api_patterns:
    # The API answers 401 in JSON itself (a token or the session), never with a login redirect,
    # and its schema is public; the docs are a page, behind the login as every page is.
    if pattern.name != "openapi-view":
        login_not_required(pattern.callback)


@login_not_required
def api_not_found(request: HttpRequest, rest: str) -> JsonResponse:
    """Any other path under /api/v1/: a JSON 404 (not the site's HTML page)."""
    return JsonResponse(
        {"type": "not_found", "message": f"No API endpoint at {request.path}; see /api/v1/docs."},
        status=404,
    )


urlpatterns = [
    path("api/v1/", (api_patterns, app_name_, namespace)),
    re_path(r"^api/v1/(?P<rest>.*)$", api_not_found),
    path("account/api-tokens/", tokens.api_tokens, name="api_tokens"),
    path(
        "account/api-tokens/<int:token_id>/revoke/",
        tokens.api_token_revoke,
        name="api_token_revoke",
    ),
]
