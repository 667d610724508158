"""Plan an ingest: compare the listed leaves with the committed partitions.

Pure and Django-free: the caller lists the connector in the sandbox (connector_engine.child.listing
validates what it yields; this module trusts that the leaves it gets are valid and unique) and
passes the committed state as `{name: CommittedState(fingerprint, code_fingerprint)}`, the
hashes of the inputs this ingest runs with (connector_engine.ingest.inputs), those earlier code
fingerprints were made of (`known_inputs`, when known) and the names whose read failed last time
with these inputs (`retry`).

Change detection rules, each read with its reason:
- a committed name with the listed fingerprint and this code fingerprint is skipped;
- a name whose read failed last time is read again ("failed last time");
- a listed name that is not committed is read ("new");
- a committed name written with another code fingerprint is read, saying which inputs changed
  ("library code changed", "connector code and connection packages changed"; "code changed"
  when the inputs it was written with are unknown): a change of any input makes every
  partition stale;
- a committed name whose fingerprint differs is read ("fingerprint changed");
- committed names no longer listed are deleted.

Reads keep the listing's order (so a run reads partitions in the order the connector yields
them); skips and deletes are sorted by name. `PartitionPlan.deletes_too_many` is the deletion
guard's test: the caller refuses such a plan unless deletes were allowed.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from connector_engine.ingest.inputs import changed_inputs, code_fingerprint

NEW, FINGERPRINT_CHANGED, FAILED_LAST_TIME = "new", "fingerprint changed", "failed last time"
CODE_CHANGED = "code changed"  # written with inputs that are not known any more


class CommittedState(NamedTuple):
    """What the last successful write of a partition recorded."""

    fingerprint: str
    code_fingerprint: str


@dataclass(frozen=True, slots=True)
class ListedLeaf:
    """A valid leaf from the listing: its name, fingerprint and the metadata to read it with."""

    name: str
    fingerprint: str
    metadata: dict[str, Any]


@dataclass(frozen=True, slots=True)
class PlannedRead:
    """A partition to read, and why."""

    name: str
    fingerprint: str
    metadata: dict[str, Any]
    reason: str


@dataclass
class PartitionPlan:
    """What an ingest will do: read, skip and delete, by partition name.

    `committed` counts the committed partitions the plan was compared with.
    """

    read: list[PlannedRead] = field(default_factory=list)
    skip: list[str] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)
    committed: int = 0

    @property
    def counts(self) -> dict[str, int]:
        return {"read": len(self.read), "skip": len(self.skip), "delete": len(self.delete)}

    def deletes_too_many(self, max_fraction: float) -> bool:
        """Say whether the plan deletes every committed partition, or more than `max_fraction`
        of them (the deletion guard)."""
        deleted, committed = len(self.delete), self.committed
        return deleted > 0 and (deleted == committed or deleted > max_fraction * committed)

    def to_dict(self, max_names: int | None = None) -> dict[str, Any]:
        """Return the JSON shape; each list keeps at most `max_names` names (the rest counted)."""

        def capped(names: list[Any]) -> list[Any]:
            return names if max_names is None else names[:max_names]

        def omitted(names: list[Any]) -> int:
            return 0 if max_names is None else max(len(names) - max_names, 0)

        reasons: dict[str, int] = {}
        for planned in self.read:
            reasons[planned.reason] = reasons.get(planned.reason, 0) + 1
        return {
            "counts": self.counts,
            "committed": self.committed,
            "read_reasons": reasons,
            "read": [{"name": p.name, "reason": p.reason} for p in capped(self.read)],
            "skip": capped(self.skip),
            "delete": capped(self.delete),
            "names_omitted": {
                "read": omitted(self.read),
                "skip": omitted(self.skip),
                "delete": omitted(self.delete),
            },
        }


def partition_plan(
    leaves: Iterable[ListedLeaf],
    committed: Mapping[str, CommittedState],
    inputs: Mapping[str, str],
    *,
    known_inputs: Mapping[str, Mapping[str, str]] | None = None,
    retry: Collection[str] = (),
) -> PartitionPlan:
    """Decide which leaves to read (and why) or skip and which committed partitions to delete.

    `inputs` are the hashes of what this ingest runs with; `known_inputs` maps earlier code
    fingerprints to theirs; `retry` names the partitions whose read failed last time.
    """
    fingerprint = code_fingerprint(inputs)
    code_reasons: dict[str, str] = {}  # by the code fingerprint a partition was written with

    def code_reason(written_with: str) -> str:
        if written_with not in code_reasons:
            before = (known_inputs or {}).get(written_with)
            changed = changed_inputs(before, inputs) if before else []
            code_reasons[written_with] = f"{_and(changed)} changed" if changed else CODE_CHANGED
        return code_reasons[written_with]

    plan = PartitionPlan(committed=len(committed))
    listed: set[str] = set()
    for leaf in leaves:
        if leaf.name in listed:
            raise ValueError(f"duplicate leaf name {leaf.name!r}: validate the listing first")
        listed.add(leaf.name)
        state = committed.get(leaf.name)
        if state == (leaf.fingerprint, fingerprint):  # unchanged (a CommittedState is a tuple)
            plan.skip.append(leaf.name)
            continue
        if leaf.name in retry:
            reason = FAILED_LAST_TIME
        elif state is None:
            reason = NEW
        elif state.code_fingerprint != fingerprint:
            reason = code_reason(state.code_fingerprint)
        else:
            reason = FINGERPRINT_CHANGED
        plan.read.append(PlannedRead(leaf.name, leaf.fingerprint, leaf.metadata, reason))
    plan.delete = sorted(name for name in committed if name not in listed)
    plan.skip.sort()
    return plan


def _and(names: list[str]) -> str:
    """Join names as a sentence does: "a", "a and b", "a, b and c"."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def leaves_from_listing(result: Mapping[str, Any]) -> list[ListedLeaf]:
    """Return the leaves of a `list` action's result (objects already validated)."""
    return [
        ListedLeaf(obj["name"], obj["fingerprint"], obj["metadata"])
        for obj in result.get("objects") or ()
        if not obj.get("is_prefix")
    ]
