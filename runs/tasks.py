"""Background tasks (django-tasks, database backend), executed by `manage.py worker`.

Enqueueing lives here too: a task calls services, so services never import tasks.
"""

from __future__ import annotations

from django.db import transaction
from django_tasks import task

from connections.models import Connector
from connector_engine.protocol import IngestEngine
from runs.ingest.recovery import IngestQueue
from runs.ingest.services import ingest_create, ingest_execute
from runs.models import Run


@task()
def ingest_run(run_id: int) -> str:
    """Execute one queued ingest run; return its final status."""
    return ingest_execute(run_id=run_id).status


# How recovery (runs.ingest.recovery) hands a queued ingest to the workers again.
INGEST_QUEUE = IngestQueue(
    task_path=ingest_run.module_path, enqueue=lambda run_id: ingest_run.enqueue(run_id=run_id)
)


def ingest_enqueue(
    *,
    connector: Connector,
    user=None,
    dry_run: bool = False,
    engine: str = IngestEngine.SANDBOX,
    allow_deletes: bool = False,
) -> Run:
    """Create a queued ingest run (ingest_create) and enqueue its task once the transaction
    commits, so the worker never sees a run that is not committed."""
    with transaction.atomic():
        run = ingest_create(
            connector=connector,
            user=user,
            dry_run=dry_run,
            engine=engine,
            allow_deletes=allow_deletes,
        )
        run_id = run.pk
        transaction.on_commit(lambda: ingest_run.enqueue(run_id=run_id))
    return run
