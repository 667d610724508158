"""Run history that reads well: previews of saved code name their version, dry runs read as
"Plan", and the editor's recent runs refresh after each preview."""

from __future__ import annotations

import pytest
from django.urls import reverse

from connections import services as connection_services
from runs.ingest import services as ingest_services
from runs.models import Run
from runs.services import preview_run
from tests.factories import TRIVIAL_CODE, make_connector

pytestmark = pytest.mark.django_db


def preview(client, connector, action, **fields):
    data = {"code": connector.code, "interface": "pandas", "parser": "", "packages": ""}
    return client.post(reverse("runs:preview", args=[connector.slug, action]), data | fields)


def test_code_posted_with_crlf_line_breaks_is_the_saved_version(client, owner, connector):
    client.force_login(owner)
    # Browsers send a form's line breaks as CRLF; the editor's previews send LF.
    data = {"code": TRIVIAL_CODE.replace("\n", "\r\n"), "interface": "pandas", "packages": ""}
    assert client.post(reverse("connector_save", args=[connector.slug]), data).json()["saved"]
    preview(client, connector, "context", code=TRIVIAL_CODE)
    run = Run.objects.get()
    assert run.code_version == connector.latest_version and run.code_version.number == 1
    assert run.parameters["unsaved_code"] is False


def test_a_preview_of_an_earlier_versions_code_is_recorded_against_it(owner, connector):
    first = connector.latest_version
    connection_services.connector_save_code(
        connector=connector,
        code=TRIVIAL_CODE.replace("[1, 2, 3]", "[4]"),
        packages="",
        interface="pandas",
        parser="",
    )
    assert connector.latest_version.number == 2
    run = preview_run(
        connector=connector, action="context", code=TRIVIAL_CODE.replace("\n", "\r\n")
    )
    assert run.code_version == first
    run = preview_run(connector=connector, action="context", code=TRIVIAL_CODE + "# new\n")
    assert run.code_version is None


def test_a_preview_answers_runs_changed_and_the_recent_runs_refresh(client, owner, connector):
    client.force_login(owner)
    url = reverse("runs:recent_runs", args=[connector.slug])
    assert "No runs yet." in client.get(url).content.decode()
    response = preview(client, connector, "context")
    assert response["HX-Trigger"] == "runs-changed"
    table = client.get(url).content.decode()
    assert 'hx-trigger="runs-changed from:body"' in table
    assert "Preview context" in table and "v1" in table
    editor = client.get(reverse("connector_editor", args=[connector.slug])).content.decode()
    assert 'id="recent-runs"' in editor and "Preview context" in editor


def test_recent_runs_are_for_people_who_see_the_connector(client, stranger, connector):
    client.force_login(stranger)
    response = client.get(reverse("runs:recent_runs", args=[connector.slug]))
    assert response.status_code in (403, 404)


def test_dry_runs_read_as_plan_in_every_run_list(client, owner, connection):
    connector = make_connector(connection=connection, name="Planned")
    run = ingest_services.ingest_create(connector=connector, user=owner, dry_run=True)
    client.force_login(owner)
    pages = [
        reverse("runs:connector_runs", args=[connector.slug]),
        reverse("runs:recent_runs", args=[connector.slug]),
        reverse("connector_editor", args=[connector.slug]),
        reverse("home"),
        reverse("runs:detail", args=[run.pk]),
    ]
    for url in pages:
        page = client.get(url).content.decode()
        assert ">Plan<" in page or "Plan of Planned" in page, url
    assert run.kind_label == "Plan"
    ingest = ingest_services.ingest_create(connector=connector, user=owner)
    assert ingest.kind_label == "Ingest"
