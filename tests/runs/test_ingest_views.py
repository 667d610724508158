"""The ingest pages: start, plan, live progress, cancel, committed partitions and their rows."""

from __future__ import annotations

import pytest
from django.urls import reverse

from runs.ingest import services
from runs.models import Run, RunStatus
from tests.factories import make_connector

pytestmark = pytest.mark.django_db

THREE_PARTITIONS = """
import pandas as pd


def list_objects(context, metadata):
    for name in ("a", "b", "c"):
        yield {"name": name, "fingerprint": "v1"}


def read_pandas_dataframe(context, metadata):
    if metadata["name"] == "c":
        raise ValueError("c is broken")
    return pd.DataFrame({"name": [metadata["name"]] * 2, "n": [1, 2]})
"""


@pytest.fixture
def source(connection, settings, tmp_path):
    settings.PARTITIONS_DIR = tmp_path / "partitions"
    return make_connector(connection=connection, name="Three", code=THREE_PARTITIONS)


def test_it_queues_an_ingest_and_shows_its_run(client, member, source):
    client.force_login(member)
    response = client.post(reverse("runs:ingest", args=[source.slug]))
    run = Run.objects.get(kind="ingest")
    assert response.headers["Location"] == reverse("runs:detail", args=[run.pk])
    assert run.status == RunStatus.QUEUED and run.user == member
    again = client.post(reverse("runs:ingest", args=[source.slug]), follow=True)
    assert Run.objects.filter(kind="ingest").count() == 1
    assert "already queued or running" in again.content.decode()
    page = client.get(reverse("runs:detail", args=[run.pk])).content.decode()
    assert 'hx-trigger="every 1s"' in page  # the progress panel polls while the run is active


def test_it_shows_what_the_next_ingest_will_do(client, owner, source):
    client.force_login(owner)
    page = client.post(reverse("runs:ingest_plan", args=[source.slug])).content.decode()
    assert 'class="plan-read">3<' in page and 'class="plan-skip">0<' in page
    assert not Run.objects.filter(kind="ingest").exists()


def test_the_plan_says_why_each_partition_is_read(client, owner, source, connection):
    services.ingest_execute(run_id=services.ingest_create(connector=source).pk)  # c fails
    connection.library_code = "VERSION = 2\n"
    connection.save()
    client.force_login(owner)
    page = client.post(reverse("runs:ingest_plan", args=[source.slug])).content.decode()
    assert '<span class="plan-reason">2 library code changed</span>' in page
    assert '<span class="plan-reason">1 new</span>' in page
    assert '<code>a</code> <span class="text-body-secondary">library code changed</span>' in page
    assert "would stop" not in page


def test_it_shows_progress_jobs_and_chart_of_a_finished_ingest(client, owner, source):
    run = services.ingest_create(connector=source, user=owner)
    services.ingest_execute(run_id=run.pk)
    client.force_login(owner)
    page = client.get(reverse("runs:progress", args=[run.pk])).content.decode()
    assert 'data-status="failed"' in page and "every 1s" not in page
    assert 'class="progress-done">3<' in page
    assert "ValueError: c is broken" in page
    assert page.count("<rect ") == 4  # rows and duration bars for the two partitions read

    partitions = client.get(reverse("runs:partitions", args=[source.slug])).content.decode()
    assert "2 committed partitions" in partitions
    partition = source.partitions.get(name="a")
    rows = client.get(reverse("runs:partition_rows", args=[source.slug, partition.pk]))
    assert "<td>a</td>" in rows.content.decode() and "2 rows" in rows.content.decode()


def test_the_ingest_charts_have_axes_labels_and_a_title_per_bar(client, owner, source):
    run = services.ingest_create(connector=source, user=owner)
    services.ingest_execute(run_id=run.pk)
    client.force_login(owner)
    page = client.get(reverse("runs:progress", args=[run.pk])).content.decode()
    assert page.count('class="axis-x"') == 2 and page.count('class="axis-y"') == 2
    assert '<text class="axis-label-y"' in page
    assert ">rows</text>" in page and ">seconds</text>" in page
    assert ">partitions (1 to 2, in plan order)</text>" in page
    assert page.count('class="tick-y"') == 6  # 0, half and top on each chart
    zero = '<text class="tick-y" x="48" y="134" text-anchor="end" dominant-baseline="middle">0<'
    assert zero in page  # the y axis starts at 0, at the x axis
    assert ">2</text>" in page  # the rows axis tops at 2
    for name in ("a", "b"):  # on both charts: the partition, its rows and its duration
        assert page.count(f"<title>{name}: 2 rows in ") == 2


def test_it_cancels_a_queued_ingest(client, member, source):
    run = services.ingest_create(connector=source, user=member)
    client.force_login(member)
    response = client.post(reverse("runs:cancel", args=[run.pk]))
    assert response.status_code == 302
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED


def test_it_keeps_ingest_pages_to_people_with_access(client, stranger, source):
    run = services.ingest_create(connector=source)
    client.force_login(stranger)
    for url in [
        reverse("runs:progress", args=[run.pk]),
        reverse("runs:partitions", args=[source.slug]),
    ]:
        assert client.get(url).status_code == 403
    for url in [
        reverse("runs:cancel", args=[run.pk]),
        reverse("runs:ingest", args=[source.slug]),
        reverse("runs:ingest_plan", args=[source.slug]),
    ]:
        assert client.post(url).status_code == 403
        assert client.get(url).status_code in {403, 405}
    run.refresh_from_db()
    assert run.status == RunStatus.QUEUED


def test_the_editor_offers_a_spark_ingest_and_queues_one(client, member, source, connection):
    client.force_login(member)
    editor = client.get(reverse("connector_editor", args=[source.slug]))
    assert b'name="engine" value="spark"' in editor.content
    client.post(reverse("runs:ingest", args=[source.slug]), {"engine": "spark"})
    assert Run.objects.get(kind="ingest").engine == "spark"


def test_a_spark_connector_is_not_offered_scale_out(client, member, connection):
    spark_connector = make_connector(connection=connection, name="S", interface="spark")
    client.force_login(member)
    editor = client.get(reverse("connector_editor", args=[spark_connector.slug]))
    assert b'name="engine"' not in editor.content
    response = client.post(reverse("runs:ingest", args=[spark_connector.slug]), {"engine": "spark"})
    assert response.headers["Location"] == reverse("connector_editor", args=[spark_connector.slug])
    assert not Run.objects.filter(kind="ingest").exists()
    page = client.get(response.headers["Location"])
    assert b"already reads through Spark" in page.content
