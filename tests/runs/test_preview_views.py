"""The editor's preview endpoint and the run pages."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from runs.models import Run
from tests.factories import TRIVIAL_CODE, make_connection, make_connector

pytestmark = pytest.mark.django_db

FOLDERS = """
import pandas as pd


def list_objects(context, metadata):
    if not metadata:
        yield {"name": "2025", "fingerprint": "f", "is_prefix": True}
        yield {"name": "top.csv", "fingerprint": "t"}
    else:
        yield {"name": "2025/jan.csv", "fingerprint": "j", "path": "/data/jan"}
        yield {"name": "2025/bad.csv", "fingerprint": ""}


def read_pandas_dataframe(context, metadata):
    return pd.DataFrame({"path": [metadata.get("path")]})
"""


def preview(client, connector, action, **fields):
    data = {
        "code": connector.code,
        "interface": "pandas",
        "parser": "",
        "packages": "",
        "limit": 100,
    }
    return client.post(reverse("runs:preview", args=[connector.slug, action]), data | fields)


def test_it_previews_unsaved_code_and_records_the_run(client, member, connector):
    client.force_login(member)
    code = TRIVIAL_CODE.replace("[1, 2, 3]", "[41, 42]")
    page = preview(client, connector, "read", code=code).content.decode()
    assert "<td>41</td>" in page and "<td>42</td>" in page
    assert "Column profile" in page
    run = Run.objects.get()
    assert run.user == member and run.code_version is None and run.kind == "read"


def test_the_answer_says_where_the_time_went(client, member, connector):
    # Server-Timing (shown by browsers' developer tools; read by bench/preview_latency.py).
    client.force_login(member)
    response = preview(client, connector, "read")
    phases = {}
    for part in response["Server-Timing"].split(", "):
        name, duration = part.split(";dur=")
        phases[name] = float(duration)
    assert {"admit", "prepare", "sandbox", "record", "render"} <= set(phases)
    assert {"sandbox-execute", "sandbox-round_trip"} <= set(phases)
    assert all(value >= 0 for value in phases.values())
    assert phases["sandbox-execute"] <= phases["sandbox"]


PROFILED = """
import pandas as pd


def list_objects(context, metadata):
    yield {"name": "numbers", "fingerprint": "1"}


def read_pandas_dataframe(context, metadata):
    return pd.DataFrame({"n": [i % 4 for i in range(300)], "label": ["x"] * 300})
"""


def test_the_profile_covers_the_partition_with_a_histogram_per_number_column(
    client, member, connection
):
    connector = make_connector(connection=connection, name="Profiled", code=PROFILED)
    client.force_login(member)
    page = preview(client, connector, "read", limit=10).content.decode()
    assert "Column profile of all 300 rows of the partition" in page
    assert page.count('<svg class="histogram"') == 1  # "n" only: strings get none
    assert 'aria-label="Histogram of n: 4 bins, 300 values"' in page
    assert page.count('<g class="histogram-bar">') == 4
    for value in range(4):
        assert f"<title>{value}: 75 rows</title>" in page


def test_a_profile_over_the_budget_says_it_covers_the_first_rows(
    client, member, connection, settings
):
    settings.PREVIEW_PROFILE_ROW_BUDGET = 50
    connector = make_connector(connection=connection, name="Profiled", code=PROFILED)
    client.force_login(member)
    page = preview(client, connector, "read", limit=10).content.decode()
    assert "Column profile of the first 50 of 300 rows (the row budget)" in page
    assert 'class="badge text-bg-light border profile-sample"' in page


def test_it_lists_the_root_and_expands_a_prefix_lazily(client, owner, connection):
    connector = make_connector(connection=connection, name="Folders", code=FOLDERS)
    client.force_login(owner)
    root = preview(client, connector, "list").content.decode()
    assert 'class="tree-prefix"' in root and "2025" in root and "top.csv" in root
    assert "2025/jan.csv" not in root  # deeper levels load when the prefix is clicked
    prefix = {"name": "2025", "fingerprint": "f", "is_prefix": True}
    children = preview(client, connector, "list", object=json.dumps(prefix)).content.decode()
    assert "2025/jan.csv" in children
    # The invalid item is not a node to click, but it is shown, flagged, where it was listed.
    assert 'class="small tree-problem has-problem"' in children and "2025/bad.csv" in children
    # The leaf carries its full metadata, so a click reads it with its own keys.
    leaf_meta = {
        "name": "2025/jan.csv",
        "fingerprint": "j",
        "path": "/data/jan",
        "is_prefix": False,
    }
    read = preview(client, connector, "read", object=json.dumps(leaf_meta)).content.decode()
    assert "/data/jan" in read


def test_it_marks_the_error_line_with_a_link(client, owner, connector):
    client.force_login(owner)
    code = TRIVIAL_CODE.replace('return pd.DataFrame({"n": [1, 2, 3]})', "return 1 / 0")
    page = preview(client, connector, "read", code=code).content.decode()
    line = code.splitlines().index("    return 1 / 0") + 1
    assert f'data-error-line="{line}"' in page
    assert f'class="line-link" data-line="{line}"' in page
    assert "ZeroDivisionError" in page


def test_it_refuses_bad_preview_input(client, owner, connector):
    client.force_login(owner)
    assert preview(client, connector, "read", object="{oops").status_code == 400
    assert preview(client, connector, "read", limit=0).status_code == 400
    assert preview(client, connector, "dance").status_code == 404
    assert not Run.objects.exists()


def test_it_shows_a_run_with_its_result(client, member, connector):
    client.force_login(member)
    preview(client, connector, "context")
    run = Run.objects.get()
    page = client.get(reverse("runs:detail", args=[run.pk])).content.decode()
    assert "Preview context" in page and "Succeeded" in page
    history = client.get(reverse("runs:connector_runs", args=[connector.slug])).content.decode()
    assert reverse("runs:detail", args=[run.pk]) in history


SLASHED = """
import pandas as pd


def list_objects(context, metadata):
    if not metadata:
        yield {"name": "flights/year=2013/", "fingerprint": "p", "is_prefix": True}
    else:
        yield {"name": "flights/year=2013/part-0.csv", "fingerprint": "a"}


def read_pandas_dataframe(context, metadata):
    return pd.DataFrame({"n": [1]})
"""


def test_it_shows_names_exactly_as_the_connector_gave_them(client, owner, connection):
    connector = make_connector(connection=connection, name="Slashed", code=SLASHED)
    client.force_login(owner)
    root = preview(client, connector, "list").content.decode()
    assert '<span class="tree-name">flights/year=2013/</span>' in root
    assert "2013//" not in root
    prefix = {"name": "flights/year=2013/", "fingerprint": "p", "is_prefix": True}
    children = preview(client, connector, "list", object=json.dumps(prefix)).content.decode()
    assert '<span class="tree-name">flights/year=2013/part-0.csv</span>' in children


def test_the_context_preview_shows_the_connections_fields_but_no_secret(
    client, member, owner, team
):
    connection = make_connection(
        owner=owner,
        name="Postgres",
        credentials=json.dumps({"host": "db.internal.example", "password": "pw-SECRET-777"}),
    )
    connection.shared_with.add(team)
    connector = make_connector(connection=connection, name="Tables")
    client.force_login(member)
    page = preview(client, connector, "context").content.decode()
    shown = page[page.index('class="col-lg-4 small context-credentials"') :]
    assert '<code class="credential-value">db.internal.example</code>' in shown
    assert "<code>password</code>" in shown and "set (secret)" in shown
    assert "pw-SECRET-777" not in page
    # Only the context preview shows them.
    listing = preview(client, connector, "list").content.decode()
    assert "context-credentials" not in listing
