"""The editor's Run tests button: the editor's code's test_* functions, shown per test."""

from __future__ import annotations

import pytest
from django.urls import reverse

from runs.models import Run
from tests.factories import TRIVIAL_CODE

pytestmark = pytest.mark.django_db

TESTS = (
    TRIVIAL_CODE
    + """

def test_one_leaf(objects):
    print("leaves:", len(objects))
    assert len(objects) == 2
"""
)


def test_the_editor_has_a_run_tests_button(client, owner, connector):
    client.force_login(owner)
    page = client.get(reverse("connector_editor", args=[connector.slug])).content.decode()
    assert 'id="test-button"' in page
    assert reverse("runs:preview", args=[connector.slug, "test"]) in page


def test_it_runs_the_editors_tests_and_shows_each(client, member, connector):
    client.force_login(member)
    data = {"code": TESTS, "interface": "pandas", "parser": "", "packages": "", "limit": 100}
    response = client.post(reverse("runs:preview", args=[connector.slug, "test"]), data)
    page = response.content.decode()
    assert response.status_code == 200
    assert 'data-outcome="failed"' in page and "test_one_leaf" in page
    assert "assert 1 == 2" in page and "leaves: 1" in page
    assert "1 test: 0 passed, 1 failed, 0 errors" in page
    run = Run.objects.get()
    assert run.kind == "test" and run.user == member and run.code_version is None
