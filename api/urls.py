"""The HTTP API under /api/v1/ and the page where users manage their API tokens."""

from django.contrib.auth.decorators import login_not_required
from django.urls import path

from api.views import tokens
from api.views.site import api

api_patterns, app_name_, namespace = api.urls
for pattern in api_patterns:
    # The API answers 401 in JSON itself (a token or the session), never with a login redirect,
    # and its schema is public; the docs are a page, behind the login as every page is.
    if pattern.name != "openapi-view":
        login_not_required(pattern.callback)

urlpatterns = [
    path("api/v1/", (api_patterns, app_name_, namespace)),
    path("account/api-tokens/", tokens.api_tokens, name="api_tokens"),
    path(
        "account/api-tokens/<int:token_id>/revoke/",
        tokens.api_token_revoke,
        name="api_token_revoke",
    ),
]
