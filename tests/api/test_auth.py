from __future__ import annotations

from django.test import Client

from api.models import ApiToken
from api.services import api_token_create, api_token_revoke


def test_it_refuses_a_request_without_a_token(db):
    response = Client().get("/api/v1/connections")
    assert response.status_code == 401
    assert response.json()["type"] == "unauthenticated"
    assert response.json()["message"]


def test_it_refuses_a_bad_token(db):
    response = Client(headers={"Authorization": "Bearer cs_nope"}).get("/api/v1/connections")
    assert response.status_code == 401
    assert response.json()["type"] == "unauthenticated"


def test_it_refuses_a_revoked_token(owner):
    token, secret = api_token_create(user=owner, name="old")
    api_token_revoke(token=token)
    client = Client(headers={"Authorization": f"Bearer {secret}"})
    assert client.get("/api/v1/connections").status_code == 401


def test_it_refuses_a_token_of_an_inactive_user(owner):
    _token, secret = api_token_create(user=owner, name="t")
    owner.is_active = False
    owner.save()
    client = Client(headers={"Authorization": f"Bearer {secret}"})
    assert client.get("/api/v1/connections").status_code == 401


def test_it_stores_only_the_hash_and_records_last_use(owner):
    token, secret = api_token_create(user=owner, name="laptop")
    assert secret not in token.token_hash and len(token.token_hash) == 64
    assert token.last_used_at is None
    client = Client(headers={"Authorization": f"Bearer {secret}"})
    assert client.get("/api/v1/connections").status_code == 200
    token.refresh_from_db()
    assert token.last_used_at is not None


def test_it_needs_no_csrf_token_with_a_bearer_token(owner_api, connector):
    # owner_api enforces CSRF checks, and sends no CSRF token.
    response = owner_api.patch(
        f"/api/v1/connectors/{connector.slug}",
        {"packages": ""},
        content_type="application/json",
    )
    assert response.status_code == 200


def test_it_accepts_the_session_for_reads(owner, connection):
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    assert client.get("/api/v1/connections").status_code == 200


def test_it_checks_csrf_on_session_writes(owner, connector):
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    response = client.patch(
        f"/api/v1/connectors/{connector.slug}", {}, content_type="application/json"
    )
    assert response.status_code in (401, 403)
    assert "type" in response.json()
    # With the CSRF cookie and header, the same request works.
    client.get("/account/api-tokens/")
    csrf = client.cookies["csrftoken"].value
    response = client.patch(
        f"/api/v1/connectors/{connector.slug}",
        {},
        content_type="application/json",
        headers={"X-CSRFToken": csrf},
    )
    assert response.status_code == 200


def test_it_creates_and_revokes_tokens_on_the_tokens_page(owner, client):
    client.force_login(owner)
    response = client.post("/account/api-tokens/", {"name": "laptop"})
    assert response.status_code == 200
    token = ApiToken.objects.get(user=owner, name="laptop")
    secret = response.context["new_secret"]
    assert secret.startswith(token.prefix)
    assert secret in response.content.decode()
    # Shown once: the list page does not show it again.
    assert secret not in client.get("/account/api-tokens/").content.decode()
    response = client.post(f"/account/api-tokens/{token.pk}/revoke/")
    assert response.status_code == 302
    token.refresh_from_db()
    assert token.revoked


def test_it_does_not_revoke_another_users_token(owner, stranger, client):
    token, _secret = api_token_create(user=owner, name="mine")
    client.force_login(stranger)
    assert client.post(f"/account/api-tokens/{token.pk}/revoke/").status_code == 404
    token.refresh_from_db()
    assert not token.revoked


def test_it_links_the_tokens_page_from_the_header(owner, client):
    client.force_login(owner)
    assert 'href="/account/api-tokens/"' in client.get("/account/api-tokens/").content.decode()


def test_it_answers_an_unexpected_failure_in_json(owner_api, connection, monkeypatch):
    def explode(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr("api.views.connections.shown_credentials", explode)
    response = owner_api.get(f"/api/v1/connections/{connection.slug}")
    assert response.status_code == 500
    assert response.json()["type"] == "internal_error"
    assert "boom" not in response.content.decode()
