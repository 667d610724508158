"""Bounds on what one user can make the server store and run (issue 12, "Bounds").

The attacks, against the real services and the real sandbox:
- a reader returning one 40 MiB cell: the stored Run.result and the rendered result panel
  stay small, with the one "cut" marker where the cell was cut;
- a preview whose rows together are larger than the per-result cap: the first rows that fit
  are stored and the panel says how many were cut;
- 12 previews fired at once by one user: at most SANDBOX_MAX_PER_USER run at once, the rest are
  refused at once (TooManyRuns, HTTP 429), and another user's preview at the same time works.
"""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
from django.db import connection as db_connection
from django.urls import reverse
from django.utils import timezone

from runs.ingest import services as ingest_services
from runs.models import Run, RunStatus
from runs.services import preview_run
from tests.factories import make_connector

MB = 1024 * 1024

BIG_CELL = """
import pandas as pd


def list_objects(context, metadata):
    yield {"name": "big", "fingerprint": "1", "note": "n" * (40 * 1024 * 1024)}


def read_pandas_dataframe(context, metadata):
    return pd.DataFrame({"blob": ["x" * (40 * 1024 * 1024)], "n": [1]})
"""

WIDE_ROWS = """
import pandas as pd


def list_objects(context, metadata):
    yield {"name": "wide", "fingerprint": "1"}


def read_pandas_dataframe(context, metadata):
    return pd.DataFrame({"n": range(100), "text": [f"{i:04d}" + "y" * 5_000 for i in range(100)]})
"""

RAISES = """
def list_objects(context, metadata):
    yield {"name": "only", "fingerprint": "1"}


def read_pandas_dataframe(context, metadata):
    raise ValueError("z" * (40 * 1024 * 1024))
"""

SLEEPY = """
import time

import pandas as pd


def list_objects(context, metadata):
    yield {"name": "only", "fingerprint": "1"}


def read_pandas_dataframe(context, metadata):
    time.sleep(1.5)
    return pd.DataFrame({"n": [1]})
"""

MARKER = "[output cut:"
REFUSED = "TooManyRuns"


def post_preview(client, connector, action: str = "read", **fields):
    data = {"code": connector.code, "interface": "pandas", "parser": "", "packages": ""}
    return client.post(reverse("runs:preview", args=[connector.slug, action]), data | fields)


def stored_result_bytes(run: Run) -> int:
    """The size of the result as the database holds it."""
    with db_connection.cursor() as cursor:
        cursor.execute(f"SELECT result FROM {Run._meta.db_table} WHERE id = %s", [run.pk])
        (raw,) = cursor.fetchone()
    return len(raw.encode() if isinstance(raw, str) else json.dumps(raw).encode())


# ---------------------------------------------------------------- stored results


@pytest.mark.django_db
def test_a_40_mib_cell_is_stored_and_shown_cut_with_the_marker(client, owner, connection):
    connector = make_connector(connection=connection, name="Big", code=BIG_CELL)
    client.force_login(owner)

    response = post_preview(client, connector, "read")

    assert response.status_code == 200
    page = response.content.decode()
    assert len(page) < 1 * MB
    assert MARKER in page
    run = Run.objects.get()
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert stored_result_bytes(run) < 1 * MB
    (blob, n) = run.result["rows"][0]
    assert n == 1
    assert blob.startswith("x" * 1000) and MARKER in blob and len(blob) < 20_000
    blob_profile = run.result["profile"][0]
    assert MARKER in blob_profile["min"] and MARKER in blob_profile["max"]
    # The run page shows the same stored result, as small.
    detail = client.get(reverse("runs:detail", args=[run.pk])).content.decode()
    assert len(detail) < 1 * MB and MARKER in detail


@pytest.mark.django_db
def test_a_listing_with_a_40_mib_metadata_value_is_stored_cut(owner, connection):
    connector = make_connector(connection=connection, name="Big listing", code=BIG_CELL)

    run = preview_run(connector=connector, action="list", user=owner)

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert stored_result_bytes(run) < 1 * MB
    (item,) = run.result["objects"]
    assert item["name"] == "big"
    assert MARKER in item["metadata"]["note"]


@pytest.mark.django_db
def test_a_40_mib_exception_message_is_stored_and_shown_cut(client, owner, connection):
    connector = make_connector(connection=connection, name="Raises", code=RAISES)
    client.force_login(owner)

    page = post_preview(client, connector, "read").content.decode()

    run = Run.objects.get()
    assert run.status == RunStatus.FAILED and run.error_type == "ValueError"
    assert len(run.error_message) < 20_000 and MARKER in run.error_message
    assert len(run.error_traceback) < 200_000 and MARKER in run.error_traceback
    assert 'File "<connector>", line 7' in run.error_traceback  # the frame is kept
    assert len(page) < 1 * MB and MARKER in page


@pytest.mark.django_db
def test_rows_over_the_result_cap_are_cut_and_the_panel_says_how_many(
    client, owner, connection, settings
):
    settings.PREVIEW_MAX_RESULT_BYTES = 200_000
    connector = make_connector(connection=connection, name="Wide", code=WIDE_ROWS)
    client.force_login(owner)

    page = post_preview(client, connector, "read", limit=100).content.decode()

    run = Run.objects.get()
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert stored_result_bytes(run) <= 200_000
    kept = run.result["rows"]
    assert 0 < len(kept) < 100
    assert [row[0] for row in kept] == list(range(len(kept)))  # the first rows, in order
    assert run.result["rows_cut"] == 100 - len(kept)
    assert f"{100 - len(kept)} more rows not stored" in page
    assert len(page) < 2 * 200_000


# ---------------------------------------------------------------- concurrency caps


@pytest.mark.django_db(transaction=True)
def test_12_previews_at_once_run_at_most_the_per_user_cap(owner, member, connection, settings):
    settings.SANDBOX_MAX_PER_USER = 4
    settings.SANDBOX_MAX_TOTAL = 16
    attacker_connector = make_connector(connection=connection, name="Sleepy", code=SLEEPY)
    victim_connector = make_connector(connection=connection, name="Victim", code=SLEEPY)
    preview_run(connector=victim_connector, action="read", user=member)  # warm the sandbox
    start = threading.Barrier(13)
    runs: dict[str, list[Run]] = {"attacker": [], "victim": []}
    failures: list[BaseException] = []

    def fire(who: str, connector, user) -> None:
        try:
            start.wait(timeout=30)
            runs[who].append(preview_run(connector=connector, action="read", user=user))
        except BaseException as exc:  # reported below: a thread's failure must fail the test
            failures.append(exc)
        finally:
            db_connection.close()

    threads = [
        threading.Thread(target=fire, args=("attacker", attacker_connector, owner))
        for _ in range(12)
    ] + [threading.Thread(target=fire, args=("victim", victim_connector, member))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert not failures, failures
    attacker = runs["attacker"]
    assert len(attacker) == 12
    ran = [run for run in attacker if run.status == RunStatus.SUCCEEDED]
    refused = [run for run in attacker if run.error_type == REFUSED]
    assert len(ran) + len(refused) == 12, [(run.status, run.error) for run in attacker]
    assert 1 <= len(ran) <= 4
    # Never more than the cap at once: the admitted runs' intervals overlap at most 4 deep.
    events = sorted(
        [(run.started_at, 1) for run in ran] + [(run.finished_at, -1) for run in ran],
        key=lambda event: (event[0], event[1]),
    )
    depth = deepest = 0
    for _, step in events:
        depth += step
        deepest = max(deepest, depth)
    assert deepest <= 4
    for run in refused:
        assert run.status == RunStatus.FAILED
        assert run.error_message.endswith("of your runs are running; wait or cancel one")
        assert run.duration_ms == 0 and run.finished_at is not None
    (victim,) = runs["victim"]
    assert victim.status == RunStatus.SUCCEEDED, victim.error


@pytest.fixture
def running_previews(connection):
    """Make `count` previews of `user` look running (as another web process would have)."""
    busy = make_connector(connection=connection, name="Busy")

    def make(count: int, user, *, started_ago: timedelta = timedelta(seconds=1)) -> None:
        for _ in range(count):
            Run.objects.create(
                connector=busy,
                kind="read",
                status=RunStatus.RUNNING,
                user=user,
                started_at=timezone.now() - started_ago,
            )

    return make


@pytest.mark.django_db
def test_the_preview_view_answers_429_in_the_result_panel(
    client, owner, connector, settings, running_previews
):
    settings.SANDBOX_MAX_PER_USER = 2
    running_previews(2, owner)
    # Neither counts: a preview whose web process died days ago (it holds no sandbox), an ingest.
    running_previews(1, owner, started_ago=timedelta(days=2))
    Run.objects.create(
        connector=connector, kind="ingest", status=RunStatus.RUNNING, user=owner,
        started_at=timezone.now(),
    )  # fmt: skip
    client.force_login(owner)

    response = post_preview(client, connector, "read")

    assert response.status_code == 429
    page = response.content.decode()
    assert "preview-result" in page
    assert "2 of your runs are running; wait or cancel one" in page
    run = Run.objects.filter(connector=connector, kind="read").get()
    assert run.status == RunStatus.FAILED and run.error_type == REFUSED


@pytest.mark.django_db
def test_the_global_cap_refuses_everyone_with_a_busy_message(
    owner, member, stranger, connector, settings, running_previews
):
    settings.SANDBOX_MAX_PER_USER = 4
    settings.SANDBOX_MAX_TOTAL = 3
    running_previews(2, stranger)
    running_previews(1, None)  # a CLI preview counts towards the total

    run = preview_run(connector=connector, action="read", user=member)

    assert run.error_type == REFUSED
    assert run.error_message == "The server is busy: 3 runs are running; try again in a moment"


BIG_PARTITION = """
import pandas as pd


def list_objects(context, metadata):
    yield {"name": "big", "fingerprint": "v1"}


def read_pandas_dataframe(context, metadata):
    return pd.DataFrame({"cell": ["y" * (20 * 1024 * 1024)], "n": [1]})
"""


def test_the_rows_page_of_an_ingested_partition_is_bounded(
    client, owner, connection, settings, tmp_path
):
    settings.PARTITIONS_DIR = tmp_path / "partitions"
    connector = make_connector(connection=connection, name="Big cells", code=BIG_PARTITION)
    run = ingest_services.ingest_create(connector=connector, user=owner)
    assert ingest_services.ingest_execute(run_id=run.pk).status == "succeeded"
    partition = connector.partitions.get(name="big")
    client.force_login(owner)

    page = client.get(reverse("runs:partition_rows", args=[connector.slug, partition.pk]))

    assert page.status_code == 200
    assert len(page.content) < 1_000_000
    assert "[output cut:" in page.content.decode()
