"""Every page needs a login, except the login page and static files."""

from __future__ import annotations

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

pytestmark = pytest.mark.django_db

# The two login pages, and the health check (tests/site/test_healthz.py).
PUBLIC = {"/accounts/login/", "/admin/login/", "/healthz"}
API = "/api/v1/"  # answers 401 in JSON (tests/api), its docs page aside


def concrete_urls(resolver: URLResolver, prefix: str = "") -> list[str]:
    """Every URL pattern, with sample values in place of converters."""
    urls = []
    for pattern in resolver.url_patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            urls += concrete_urls(pattern, route)
        elif isinstance(pattern, URLPattern):
            urls.append(route)
    samples = []
    for route in urls:
        route = re.sub(r"\(\?P<[^>]+>[^)]*\)", "1", route)  # regex groups (admin)
        route = re.sub(r"<(?:\w+:)?\w+>", "1", route)  # path converters
        route = re.sub(r"\^|\$|\\Z|\\", "", route)
        samples.append(re.sub("/+", "/", "/" + route))
    return sorted(set(samples))


def test_it_redirects_anonymous_users_to_login_everywhere(client):
    urls = [
        url
        for url in concrete_urls(get_resolver())
        if url not in PUBLIC and (not url.startswith(API) or url == f"{API}docs")
    ]
    assert "/" in urls and "/runs/1/" in urls
    for url in urls:
        response = client.get(url)
        assert response.status_code in {301, 302}, url
        location = response.headers["Location"]
        assert "/login/" in location, (url, location)


def test_it_serves_the_login_page_and_static_files_anonymously(client):
    assert client.get("/accounts/login/").status_code == 200
    response = client.get("/static/vendor/bootstrap-5.3.8/bootstrap.min.css")
    assert response.status_code == 200


def test_it_shows_the_home_page_to_a_logged_in_user(client, owner, connection, connector):
    client.force_login(owner)
    page = client.get("/").content.decode()
    assert connection.name in page and connector.name in page
    assert "tok-SECRET-4242" not in page


def test_it_hides_other_peoples_connections(client, stranger, connection):
    client.force_login(stranger)
    assert connection.name not in client.get("/").content.decode()


def test_it_shows_shared_connections_to_group_members(client, member, connection):
    client.force_login(member)
    assert connection.name in client.get("/").content.decode()
