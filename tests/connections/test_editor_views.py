"""The editor's endpoints: save with versions, contract check, versions and revert."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.factories import TRIVIAL_CODE

pytestmark = pytest.mark.django_db


def code_form(code: str = TRIVIAL_CODE, **changes) -> dict:
    return {"code": code, "interface": "pandas", "parser": "", "packages": ""} | changes


def test_it_shows_the_code_in_the_editor(client, member, connector):
    client.force_login(member)
    page = client.get(reverse("connector_editor", args=[connector.slug])).content.decode()
    assert "def read_pandas_dataframe" in page
    assert "codemirror.min.js" in page and "data-lint" in page


def test_it_saves_a_new_version_only_when_something_changed(client, member, connector):
    client.force_login(member)
    url = reverse("connector_save", args=[connector.slug])
    first = client.post(url, code_form(TRIVIAL_CODE + "\n# changed\n")).json()
    assert first == {
        "saved": True,
        "new_version": True,
        "version": 2,
        "message": "Saved as version 2.",
    }
    again = client.post(url, code_form(TRIVIAL_CODE + "\n# changed\n")).json()
    assert again["new_version"] is False and again["version"] == 2
    assert connector.versions.get(number=2).author == member


def test_it_refuses_a_bytes_connector_without_parser(client, owner, connector):
    client.force_login(owner)
    response = client.post(
        reverse("connector_save", args=[connector.slug]), code_form(interface="bytes")
    )
    assert response.status_code == 400
    assert "parser" in response.json()["errors"]
    assert connector.versions.count() == 1


def test_it_checks_the_contract_without_running_anything(client, owner, connector):
    client.force_login(owner)
    url = reverse("connector_check", args=[connector.slug])
    broken = client.post(
        url, {"code": "def list_objects(context, metadata):\n    yield (\n", "interface": "pandas"}
    )
    problems = broken.json()["problems"]
    assert problems and problems[0]["line"] >= 2 and problems[0]["severity"] == "error"
    good = client.post(url, {"code": TRIVIAL_CODE, "interface": "pandas"}).json()
    assert good == {"problems": []}
    wrong = client.post(url, {"code": TRIVIAL_CODE, "interface": "bytes"}).json()["problems"]
    assert any("read_pandas_dataframe" in problem["message"] for problem in wrong)


def test_a_missing_reader_is_a_warning_in_the_lint_gutter(client, owner, connector):
    client.force_login(owner)
    url = reverse("connector_check", args=[connector.slug])
    code = "def list_objects(context, metadata):\n    yield {}\n"
    (problem,) = client.post(url, {"code": code, "interface": "pandas"}).json()["problems"]
    assert problem["severity"] == "warning"
    assert problem["message"].startswith(
        "The pandas interface needs read_pandas_dataframe(context, metadata) to read a partition"
    )


def test_it_diffs_two_versions(client, owner, connector):
    client.force_login(owner)
    client.post(
        reverse("connector_save", args=[connector.slug]),
        code_form(TRIVIAL_CODE.replace("[1, 2, 3]", "[4, 5, 6]")),
    )
    page = client.get(reverse("connector_versions", args=[connector.slug])).content.decode()
    assert "v1 → v2" in page
    assert 'class="diff-removed">-    return pd.DataFrame({&quot;n&quot;: [1, 2, 3]})' in page
    assert 'class="diff-added">+    return pd.DataFrame({&quot;n&quot;: [4, 5, 6]})' in page
    picked = client.get(reverse("connector_versions", args=[connector.slug]), {"from": 2, "to": 1})
    assert "v2 → v1" in picked.content.decode()
    assert (
        client.get(reverse("connector_versions", args=[connector.slug]), {"from": "x"}).status_code
        == 400
    )


def test_it_reverts_by_making_a_new_version(client, owner, connector):
    client.force_login(owner)
    client.post(reverse("connector_save", args=[connector.slug]), code_form("# replaced\n"))
    response = client.post(reverse("connector_revert", args=[connector.slug, 1]))
    assert response.status_code == 302
    connector.refresh_from_db()
    assert connector.code == TRIVIAL_CODE
    assert list(connector.versions.values_list("number", flat=True)) == [3, 2, 1]
    assert client.post(reverse("connector_revert", args=[connector.slug, 99])).status_code == 404
