"""Reads of API tokens."""

from __future__ import annotations

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from api.models import ApiToken


def api_tokens_for_user(user) -> QuerySet[ApiToken]:
    """A user's tokens, newest first, revoked ones included."""
    return ApiToken.objects.filter(user=user).order_by("-created_at")


def api_token_for_user(user, token_id: int) -> ApiToken:
    """One of the user's own tokens, or 404."""
    return get_object_or_404(ApiToken, pk=token_id, user=user)
