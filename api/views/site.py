"""The NinjaAPI under /api/v1/: bearer tokens or the browser's session (with CSRF), and every
error as JSON `{"type", "message"}`."""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.security import HttpBearer, django_auth

from api.services import api_token_authenticate
from api.views import connections, connectors, runs, schedules

logger = logging.getLogger(__name__)


class TokenAuth(HttpBearer):
    """`Authorization: Bearer <token>`: no CSRF, as no cookie is involved."""

    def authenticate(self, request: HttpRequest, token: str):
        return api_token_authenticate(secret=token)


api = NinjaAPI(
    title="Connector Studio API",
    version="1",
    description=(
        "Connections and their sharing, connectors, previews, connector tests, ingests, "
        "schedules, runs and partitions."
    ),
    auth=[TokenAuth(), django_auth],
    urls_namespace="api_v1",
    docs_url="/docs",
    openapi_url="/openapi.json",
)


def error(request: HttpRequest, status: int, type_: str, message: str) -> HttpResponse:
    return api.create_response(request, {"type": type_, "message": message}, status=status)


@api.exception_handler(AuthenticationError)
def on_unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return error(request, 401, "unauthenticated", "Send Authorization: Bearer <token>, or log in.")


@api.exception_handler(Http404)
def on_not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return error(request, 404, "not_found", str(exc) or "Not found.")


@api.exception_handler(PermissionDenied)
def on_forbidden(request: HttpRequest, exc: PermissionDenied) -> HttpResponse:
    return error(request, 403, "forbidden", str(exc) or "Forbidden.")


@api.exception_handler(NinjaValidationError)
def on_invalid_request(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
    problems = "; ".join(
        f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}" for e in exc.errors
    )
    return error(request, 422, "invalid_request", problems)


@api.exception_handler(DjangoValidationError)
def on_invalid_value(request: HttpRequest, exc: DjangoValidationError) -> HttpResponse:
    if hasattr(exc, "message_dict"):
        message = "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
    else:
        message = " ".join(exc.messages)
    return error(request, 400, "invalid", message)


@api.exception_handler(HttpError)
def on_http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    types = {400: "invalid", 403: "forbidden", 404: "not_found", 409: "conflict", 429: "too_many"}
    return error(request, exc.status_code, types.get(exc.status_code, "error"), exc.message)


@api.exception_handler(Exception)
def on_unexpected(request: HttpRequest, exc: Exception) -> HttpResponse:
    # Logged with its traceback (the request's body is not: it may hold credentials).
    logger.error("API error on %s %s", request.method, request.path, exc_info=exc)
    return error(request, 500, "internal_error", "The server failed; the error is logged.")


api.add_router("/connections", connections.router)
api.add_router("/connectors", connectors.router)
api.add_router("/", runs.router)
api.add_router("/", schedules.router)
