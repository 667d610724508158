"""The background worker: recover what dead processes left, then run django-tasks-db's worker.

`make run` starts this instead of `db_worker` (django_tasks_db comes before runs in
INSTALLED_APPS, so a `db_worker` command here would be shadowed by the original). It accepts
every db_worker option (--batch, --max-tasks, --interval, --no-reload, ...). Several workers may
share one database (and partitions directory).

A worker registers a heartbeat row under its worker id, beats it every WORKER_HEARTBEAT_S in a
thread (runs.workers.WorkerBeat) and deletes it when it exits cleanly. When it starts and then
every few seconds (runs.ingest.recovery.IngestRecovery) it recovers what dead processes left:
task rows of dead workers end failed, ingests whose executor died are queued again for any
worker to go on (INGEST_MAX_ATTEMPTS in all, then "interrupted"), queued ingests without a task
get one, leftover temporary / unreferenced Parquet files and sandbox folders are removed. It
deletes finished runs past RUN_RETENTION_DAYS at start and daily (runs.retention.RunPruner), and
queues the ingests of due schedules (runs.schedules.enqueue_due) at start and every few seconds
(ScheduleTicker). On the first SIGTERM or Ctrl-C a running ingest stops at once (its sandboxed
reads are killed, the run ends "interrupted", committed partitions stay) and the worker exits;
a second one exits immediately.
"""

from __future__ import annotations

import logging
import os

from django.db import DatabaseError
from django.utils.autoreload import DJANGO_AUTORELOAD_ENV, run_with_reloader
from django_tasks_db.management.commands import db_worker

from runs import tasks, workers
from runs.ingest import execution, recovery
from runs.retention import RunPruner
from runs.schedules import ScheduleTicker, enqueue_due

logger = logging.getLogger(__name__)


class IngestAwareWorker(db_worker.Worker):
    def shutdown(self, signum, frame) -> None:
        execution.STOP.set()  # a running ingest notices within a fraction of a second
        super().shutdown(signum, frame)


class Command(db_worker.Command):
    help = (
        "Run the background worker (django-tasks-db) with a heartbeat; at start and every few "
        "seconds, finish the tasks of dead workers, queue their ingests again (or mark them "
        "interrupted), give queued ingests without a task one, and remove leftover files; prune "
        "finished runs past their retention at start and daily; queue the ingests of due "
        "schedules every few seconds."
    )

    def handle(self, *, verbosity: int, **options) -> None:
        self.configure_logging(verbosity)
        reloading = options["reload"] and not options["batch"]
        if reloading and os.environ.get(DJANGO_AUTORELOAD_ENV) != "true":
            self.run_worker(**options)  # the reloader's parent: the worker runs in its child
            return
        worker_id = options["worker_id"]
        workers.worker_register(worker_id=worker_id)  # before it claims anything
        try:
            pruner = RunPruner()
            self.start_up(pruner, verbose=bool(verbosity))
            with (
                workers.WorkerBeat(worker_id).running(),
                recovery.IngestRecovery(tasks.INGEST_QUEUE).running(),
                pruner.running(),
                ScheduleTicker().running(),
            ):
                self.run_worker(**options)
        finally:
            workers.worker_forget(worker_id=worker_id)

    def start_up(self, pruner: RunPruner, *, verbose: bool) -> None:
        """Recover, prune and queue due schedules once before taking tasks; the threads retry
        what fails here."""
        steps = [
            ("Recovering", self.recover),
            ("Pruning runs", lambda: self.prune(pruner)),
            ("Queuing scheduled ingests", self.enqueue_scheduled),
        ]
        for what, step in steps:
            try:
                lines = step()
            except DatabaseError:
                logger.exception("%s failed; retrying later.", what)
                continue
            for line in lines if verbose else []:
                self.stdout.write(line)

    def recover(self) -> list[str]:
        return recovery.worker_recover(queue=tasks.INGEST_QUEUE, sweep_all=True).report()

    def prune(self, pruner: RunPruner) -> list[str]:
        removed = pruner.tick()
        return [f"Removed {removed} finished run(s) past their retention."] if removed else []

    def enqueue_scheduled(self) -> list[str]:
        scheduled = enqueue_due()
        ids = ", ".join(f"#{run.pk}" for run in scheduled)
        return [f"Queued scheduled ingest(s) {ids}."] if scheduled else []

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
