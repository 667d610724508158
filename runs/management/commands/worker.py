"""The background worker: recover from a dead worker's runs, then run django-tasks-db's worker.

`make run` starts this instead of `db_worker` (django_tasks_db comes before runs in
INSTALLED_APPS, so a `db_worker` command here would be shadowed by the original). It accepts
every db_worker option (--batch, --max-tasks, --interval, --no-reload, ...).

On start it calls `ingest_recover()`: ingests left "running" by a dead process become
"interrupted" and leftover temporary / unreferenced Parquet files are removed. It then deletes
finished runs past RUN_RETENTION_DAYS, and again every day in a thread (runs.retention.RunPruner)
that stops with the worker. It queues the ingests of due schedules (runs.schedules.enqueue_due)
at start and then every few seconds in another thread (ScheduleTicker). On the first
SIGTERM or Ctrl-C a running ingest stops at once (its sandboxed reads are killed, the run
ends "interrupted", committed partitions stay) and the worker exits; a second one exits
immediately.
"""

from __future__ import annotations

import logging
import os

from django.db import DatabaseError
from django.utils.autoreload import DJANGO_AUTORELOAD_ENV, run_with_reloader
from django_tasks_db.management.commands import db_worker

from runs.ingest import execution, services
from runs.retention import RunPruner
from runs.schedules import ScheduleTicker, enqueue_due

logger = logging.getLogger(__name__)


class IngestAwareWorker(db_worker.Worker):
    def shutdown(self, signum, frame) -> None:
        execution.STOP.set()  # a running ingest notices within a fraction of a second
        super().shutdown(signum, frame)


class Command(db_worker.Command):
    help = (
        "Run the background worker (django-tasks-db) after marking ingests of dead workers "
        "interrupted and removing their leftover files; prune finished runs past their "
        "retention at start and daily; queue the ingests of due schedules every few seconds."
    )

    def handle(self, *, verbosity: int, **options) -> None:
        self.configure_logging(verbosity)
        interrupted = services.ingest_recover()
        if interrupted and verbosity:
            ids = ", ".join(f"#{pk}" for pk in interrupted)
            self.stdout.write(f"Marked ingest(s) {ids} interrupted (their worker had died).")
        pruner = RunPruner()
        try:
            removed = pruner.tick()
        except DatabaseError:  # the worker still runs; the pruner's thread retries later
            logger.exception("Pruning runs failed; retrying later.")
        else:
            if removed and verbosity:
                self.stdout.write(f"Removed {removed} finished run(s) past their retention.")
        try:
            scheduled = enqueue_due()
        except DatabaseError:  # the ticker's thread retries in a few seconds
            logger.exception("Queuing scheduled ingests failed; retrying later.")
        else:
            if scheduled and verbosity:
                ids = ", ".join(f"#{run.pk}" for run in scheduled)
                self.stdout.write(f"Queued scheduled ingest(s) {ids}.")
        reloading = options["reload"] and not options["batch"]
        if reloading and os.environ.get(DJANGO_AUTORELOAD_ENV) != "true":
            self.run_worker(**options)  # the reloader's parent: the worker runs in its child
            return
        with pruner.running(), ScheduleTicker().running():
            self.run_worker(**options)

    def run_worker(
        self,
        *,
        queue_name: str,
        interval: float,
        batch: bool,
        backend_name: str,
        startup_delay: bool,
        reload: bool,
        max_tasks: int | None,
        worker_id: str,
        exclude_queues: str,
        **options,
    ) -> None:
        """Mirror db_worker's handle() with a worker that also stops running ingests."""
        if reload and batch:
            reload = False
        queue_names = queue_name.split(",")
        excluded = exclude_queues.split(",") if exclude_queues else []
        if excluded and "*" not in queue_names:
            raise db_worker.CommandError("--exclude-queues can only be used with --queue-name=*")
        worker = IngestAwareWorker(
            queue_names=queue_names,
            interval=interval,
            batch=batch,
            backend_name=backend_name,
            startup_delay=startup_delay,
            max_tasks=max_tasks,
            worker_id=worker_id,
            excluded_queue_names=excluded,
        )
        if reload:
            if os.environ.get(DJANGO_AUTORELOAD_ENV) == "true":
                worker.configure_signals()
            run_with_reloader(worker.run)
        else:
            worker.configure_signals()
            worker.run()
