"""Plan an ingest: list the connector in the sandbox, validate, compare with what is committed.

`plan_ingest` is the one planning path: a run and a dry run call it before reading (the executor
runs the listing in its pool while it keeps the heartbeat and the cancel check going), and
"What will the next ingest do?" (runs.ingest.services.ingest_plan) calls it directly. It writes
nothing. The listing is every leaf, validated by the sandbox child; a listing with validation
problems, one cut at a limit (truncated) or one that failed (list_objects raised: never taken
for an empty listing) stops an ingest before anything is read or deleted (`stop_error`). A plan
that deletes every committed partition, or more than INGEST_MAX_DELETE_FRACTION of them, carries
a DeletionGuard error (`IngestPlan.deletion_guard`): the executor stops there unless the run
allows deletes. The comparison itself is connector_engine.ingest.planner.

`ingest_inputs` is the one place that says what an ingest's code fingerprint covers
(connector_engine.ingest.inputs); a run records their hashes (`ingest_code`), so a later plan
can name the inputs that changed.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace
from typing import Any

from django.conf import settings

from connections.models import Connector
from connector_engine import contract
from connector_engine.environments.store import ReadyEnvironment
from connector_engine.ingest.inputs import code_fingerprint, input_hashes
from connector_engine.ingest.planner import (
    CommittedState,
    ListedLeaf,
    PartitionPlan,
    leaves_from_listing,
    partition_plan,
)
from connector_engine.protocol import Action, ErrorType, SandboxRequest, make_error
from connector_engine.user_code import CONNECTOR_FILENAME
from connectors_site import engine_config
from runs.ingest.reads import Execute
from runs.models import JobAction, JobStatus, Partition, PartitionJob, Run, RunKind
from runs.selectors import code_version_for

MAX_PLAN_NAMES = 1000  # names kept per list (read/skip/delete) in run.result["plan"]
MAX_STORED_PROBLEMS = 200


@dataclass
class ListingOutcome:
    """Every leaf of a connector, or why the listing cannot be trusted for an ingest."""

    ok: bool
    leaves: list[ListedLeaf] = field(default_factory=list)
    problems: list[dict[str, Any]] = field(default_factory=list)
    problem_count: int = 0
    truncated: bool = False
    error: dict[str, Any] | None = None
    logs: str = ""
    isolation: str = ""
    duration_ms: int = 0

    def stop_error(self) -> dict[str, Any] | None:
        """Return the error that stops an ingest before anything is written, or None."""
        if self.error is not None:
            return self.error
        if self.problem_count:
            first = self.problems[0]["message"] if self.problems else "see the problems"
            return make_error(
                ErrorType.VALIDATION_ERROR,
                f"list_objects yielded {self.problem_count} invalid object(s), e.g. {first}; "
                "nothing was read or deleted: fix the listing and run again",
            )
        if self.truncated:
            return make_error(
                ErrorType.LISTING_TRUNCATED,
                f"The listing stopped at a limit ({settings.INGEST_MAX_OBJECTS} objects or "
                "the nesting depth), so vanished partitions cannot be told apart from unlisted "
                "ones; nothing was read or deleted. Raise INGEST_MAX_OBJECTS or list fewer "
                "objects.",
            )
        return None

    def summary(self) -> dict[str, Any]:
        """Return the JSON kept on the run: counts and the (first) problems."""
        return {
            "leaves": len(self.leaves),
            "problems": self.problems[:MAX_STORED_PROBLEMS],
            "problem_count": self.problem_count,
            "truncated": self.truncated,
            "duration_ms": self.duration_ms,
        }


def list_leaves(
    request: SandboxRequest,
    *,
    execute: Execute,
    cancel: threading.Event | None = None,
    environment: ReadyEnvironment | None = None,
) -> ListingOutcome:
    """List every leaf of a connector in the sandbox (validated by the child's listing).

    `request` is the connector's read request (runs.services.connector_request); the listing
    gets its own limits.
    """
    # Unmasked: the names are compared with the committed ones, and read as they were listed.
    listing = replace(
        request, action=Action.LIST, limits=engine_config.listing_limits(), mask_data=False
    )
    result = execute(listing, cancel=cancel, environment=environment)
    listed = result.result if isinstance(result.result, dict) else {}
    problems = list(listed.get("problems") or ())
    outcome = ListingOutcome(
        ok=result.ok,
        problems=problems,
        problem_count=len(problems) + int(listed.get("problems_omitted") or 0),
        truncated=bool(listed.get("truncated")),
        error=result.error if not result.ok else None,
        logs=result.logs,
        isolation=result.isolation,
        duration_ms=result.duration_ms,
    )
    if result.ok:
        outcome.leaves = leaves_from_listing(listed)
    return outcome


def missing_reader_error(connector: Connector) -> dict[str, Any] | None:
    """The ContractError of an ingest whose connector has no reader for its interface, if so.

    Checked on the host before anything is listed, for both read engines; a dry run (a plan)
    only lists, so it runs without a reader. The child checks again when it reads.
    """
    problems = contract.check_code(connector.code, connector.interface, reader_required=True)
    message = contract.missing_reader_message(connector.interface)
    found = [p for p in contract.errors_only(problems) if p.message == message]
    if not found:
        return None
    return make_error(
        ErrorType.CONTRACT_ERROR, message, line=found[0].line, file=CONNECTOR_FILENAME
    )


def ingest_inputs(connector: Connector) -> dict[str, str]:
    """Hash every input that decides what an ingest of the connector writes, by name."""
    connection = connector.connection
    files = connection.package_files.order_by("filename").values_list("filename", "sha256")
    return input_hashes(
        {
            "connector_code": connector.code,
            "interface": connector.interface,
            "parser": connector.parser,
            "parser_options": (
                json.dumps(connector.parser_options, sort_keys=True)
                if connector.parser_options
                else ""
            ),
            "connector_packages": connector.packages,
            "connection_packages": connection.packages,
            "uploaded_package_files": "".join(f"{name} {sha256}\n" for name, sha256 in files),
            "library_code": connection.library_code,
        }
    )


def ingest_code(connector: Connector) -> dict[str, Any]:
    """The fields an ingest run records about what it runs: the inputs' hashes, the code
    fingerprint of them all and the saved version of the connector's code."""
    inputs = ingest_inputs(connector)
    return {
        "inputs": inputs,
        "code_fingerprint": code_fingerprint(inputs),
        "code_version": code_version_for(connector, connector.code_fingerprint),
    }


def committed_state(
    connector: Connector, names: Collection[str] | None = None
) -> tuple[dict[str, CommittedState], dict[str, str]]:
    """Return the committed partitions (only those named, when `names` is given) as
    {name: state} and {name: storage path}."""
    states: dict[str, CommittedState] = {}
    paths: dict[str, str] = {}
    partitions = Partition.objects.filter(connector=connector)
    if names is not None:
        partitions = partitions.filter(name__in=list(names))
    rows = partitions.values_list("name", "fingerprint", "code_fingerprint", "storage_path")
    for name, fingerprint, code_fp, path in rows.iterator(chunk_size=5000):
        states[name] = CommittedState(fingerprint, code_fp)
        paths[name] = path
    return states, paths


def known_inputs(connector: Connector, fingerprints: set[str]) -> dict[str, dict[str, str]]:
    """Return the input hashes that made each of these code fingerprints, where a run kept them."""
    known = {}
    runs = Run.objects.filter(connector=connector, kind=RunKind.INGEST)
    for fingerprint in fingerprints:
        inputs = runs.filter(code_fingerprint=fingerprint).values_list("inputs", flat=True).first()
        if inputs:
            known[fingerprint] = inputs
    return known


def failed_last_time(connector: Connector, fingerprint: str) -> set[str]:
    """Name the partitions whose read failed in the connector's last ingest that read anything,
    if it ran with this code fingerprint (after a change, the change is the reason to read)."""
    last = (
        Run.objects.filter(
            connector=connector, kind=RunKind.INGEST, dry_run=False, partitions_total__gt=0
        )
        .order_by("-enqueued_at", "-id")
        .first()
    )
    if last is None or last.code_fingerprint != fingerprint:
        return set()
    failed = PartitionJob.objects.filter(run=last, action=JobAction.READ, status=JobStatus.FAILED)
    return set(failed.values_list("name", flat=True))


def deletion_guard_error(plan: PartitionPlan, connector: Connector) -> dict[str, Any] | None:
    """Return the DeletionGuard error of a plan that deletes too much to run unasked, or None."""
    limit = settings.INGEST_MAX_DELETE_FRACTION
    if not plan.deletes_too_many(limit):
        return None
    deleted, committed = len(plan.delete), plan.committed
    how_many = "all of them" if deleted == committed else f"more than {limit:.0%}"
    return make_error(
        ErrorType.DELETION_GUARD,
        f"The plan deletes {deleted} of {committed} committed partitions ({how_many}: the "
        "listing no longer has them), so the ingest stops before reading or deleting anything. "
        "If the source really lost them, delete anyway: the Delete anyway button on the run's "
        f"page, or `manage.py ingest {connector.slug} --allow-deletes`. If not, fix the source "
        "or the listing and ingest again.",
    )


@dataclass
class IngestPlan:
    """What the next ingest would do: the plan, or why an ingest would stop before writing.

    `paths` maps the committed partitions the plan was compared with to their storage paths;
    `deletion_guard` is the error that stops a plan deleting too much (unless allowed).
    """

    listing: ListingOutcome
    plan: PartitionPlan | None = None
    paths: dict[str, str] = field(default_factory=dict)
    deletion_guard: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.plan is not None

    @property
    def error(self) -> dict[str, Any] | None:
        return self.listing.stop_error()

    def to_dict(self, max_names: int | None = MAX_PLAN_NAMES) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "plan": self.plan.to_dict(max_names=max_names) if self.plan is not None else None,
            "error": self.error,
            "deletion_guard": self.deletion_guard,
            "listing": self.listing.summary(),
            "logs": self.listing.logs,
        }


def _call(listing: Callable[[], ListingOutcome]) -> ListingOutcome:
    return listing()


def plan_ingest(
    connector: Connector,
    request: SandboxRequest,
    *,
    inputs: dict[str, str],
    execute: Execute,
    environment: ReadyEnvironment | None = None,
    cancel: threading.Event | None = None,
    wait: Callable[[Callable[[], ListingOutcome]], ListingOutcome] = _call,
) -> IngestPlan:
    """List the connector, validate the listing, compare it with the committed partitions.

    `inputs` are the hashes of what the ingest runs with (`ingest_inputs`; a change of any makes
    every partition stale). `wait` runs the listing and returns it (by default here; the
    executor runs it in a pool thread). Writes nothing.
    """
    listing = wait(
        lambda: list_leaves(request, execute=execute, cancel=cancel, environment=environment)
    )
    if listing.stop_error() is not None:
        return IngestPlan(listing)
    plan, paths = compare_with_committed(connector, listing.leaves, inputs)
    return IngestPlan(listing, plan, paths, deletion_guard_error(plan, connector))


def compare_with_committed(
    connector: Connector,
    leaves: list[ListedLeaf],
    inputs: dict[str, str],
    *,
    names: Collection[str] | None = None,
) -> tuple[PartitionPlan, dict[str, str]]:
    """Compare listed leaves with the committed partitions as an ingest with `inputs` would:
    return the plan and the compared partitions' storage paths ({name: path}).

    With `names`, only those committed partitions are compared (a page of a listing: its
    leaves' statuses, not what the whole listing deletes). Writes nothing.
    """
    committed, paths = committed_state(connector, names)
    fingerprint = code_fingerprint(inputs)
    earlier = {state.code_fingerprint for state in committed.values()} - {fingerprint}
    plan = partition_plan(
        leaves,
        committed,
        inputs,
        known_inputs=known_inputs(connector, earlier),
        retry=failed_last_time(connector, fingerprint),
    )
    return plan, paths
