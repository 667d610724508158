"""Plan an ingest: compare the listed leaves with the committed partitions.

Pure and Django-free: the caller lists the connector in the sandbox (connector_engine.child.listing
validates what it yields; this module trusts that the leaves it gets are valid and unique) and
passes the committed state as `{name: CommittedState(fingerprint, code_fingerprint)}`.

Change detection rules:
- a listed name that is not committed is read ("new");
- a committed name whose fingerprint differs is read ("changed");
- a committed name written with another code fingerprint is read ("code changed"): a change
  of code, packages, interface or parser makes every partition stale;
- everything else listed is skipped; committed names no longer listed are deleted.

Reads keep the listing's order (so a run reads partitions in the order the connector yields
them); skips and deletes are sorted by name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

NEW, CHANGED, CODE_CHANGED = "new", "changed", "code changed"


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
    """What an ingest will do: read, skip and delete, by partition name."""

    read: list[PlannedRead] = field(default_factory=list)
    skip: list[str] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)
    code_changed: bool = False

    @property
    def counts(self) -> dict[str, int]:
        return {"read": len(self.read), "skip": len(self.skip), "delete": len(self.delete)}

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
            "read_reasons": reasons,
            "code_changed": self.code_changed,
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
    code_fingerprint: str,
) -> PartitionPlan:
    """Decide which leaves to read or skip and which committed partitions to delete."""
    plan = PartitionPlan()
    listed: set[str] = set()
    for leaf in leaves:
        if leaf.name in listed:
            raise ValueError(f"duplicate leaf name {leaf.name!r}: validate the listing first")
        listed.add(leaf.name)
        state = committed.get(leaf.name)
        if state is None:
            reason = NEW
        elif state.code_fingerprint != code_fingerprint:
            reason = CODE_CHANGED
            plan.code_changed = True
        elif state.fingerprint != leaf.fingerprint:
            reason = CHANGED
        else:
            plan.skip.append(leaf.name)
            continue
        plan.read.append(PlannedRead(leaf.name, leaf.fingerprint, leaf.metadata, reason))
    plan.delete = sorted(name for name in committed if name not in listed)
    plan.code_changed = plan.code_changed or any(
        state.code_fingerprint != code_fingerprint for state in committed.values()
    )
    plan.skip.sort()
    return plan


def leaves_from_listing(result: Mapping[str, Any]) -> list[ListedLeaf]:
    """Return the leaves of a `list` action's result (objects already validated)."""
    return [
        ListedLeaf(obj["name"], obj["fingerprint"], obj["metadata"])
        for obj in result.get("objects") or ()
        if not obj.get("is_prefix")
    ]
