"""Background tasks (django-tasks, database backend), executed by `manage.py worker`."""

from __future__ import annotations

from django_tasks import task

from runs import services


@task()
def ingest_run(run_id: int) -> str:
    """Execute one queued ingest run; return its final status."""
    return services.ingest_execute(run_id=run_id).status
