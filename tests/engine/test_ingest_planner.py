"""The ingest planner and its inputs: each read's reason, the deletion guard's test, the code
fingerprint of every input (pure functions, no sandbox)."""

from __future__ import annotations

from connector_engine.ingest.inputs import changed_inputs, code_fingerprint, input_hashes
from connector_engine.ingest.planner import CommittedState, ListedLeaf, partition_plan

INPUTS = input_hashes(
    {"connector_code": "code", "interface": "pandas", "library_code": "lib", "parser": ""}
)
FINGERPRINT = code_fingerprint(INPUTS)


def leaves(*names: str, fingerprint: str = "v1") -> list[ListedLeaf]:
    return [ListedLeaf(name, fingerprint, {"name": name}) for name in names]


def reasons(plan) -> dict[str, str]:
    return {read.name: read.reason for read in plan.read}


def test_each_input_is_hashed_and_an_empty_one_left_out():
    assert list(INPUTS) == ["connector_code", "interface", "library_code"]
    assert code_fingerprint(dict(reversed(INPUTS.items()))) == FINGERPRINT
    assert code_fingerprint({**INPUTS, "parser_options": "x"}) != FINGERPRINT
    # Moving text from one input to another changes the fingerprint.
    moved = input_hashes({"connector_code": "codelib", "interface": "pandas"})
    assert code_fingerprint(moved) != FINGERPRINT


def test_changed_inputs_are_named_as_a_plan_says_them():
    now = input_hashes({"connector_code": "code", "library_code": "lib2", "parser": "csv"})
    assert changed_inputs(INPUTS, now) == ["library code", "parser", "interface"]
    assert changed_inputs(INPUTS, INPUTS) == []


def test_each_read_says_why():
    before = input_hashes({"connector_code": "code", "interface": "pandas", "library_code": "x"})
    older = input_hashes({"connector_code": "old", "interface": "bytes", "library_code": "lib"})
    committed = {
        "same": CommittedState("v1", FINGERPRINT),
        "changed": CommittedState("v0", FINGERPRINT),
        "library": CommittedState("v1", code_fingerprint(before)),
        "two": CommittedState("v1", code_fingerprint(older)),
        "unknown": CommittedState("v1", "written-before-inputs-were-kept"),
        "failed": CommittedState("v0", code_fingerprint(before)),
        "gone": CommittedState("v1", FINGERPRINT),
    }
    known = {code_fingerprint(before): before, code_fingerprint(older): older}
    names = ("new", "same", "changed", "library", "two", "unknown", "failed", "retry-new")
    plan = partition_plan(
        leaves(*names),
        committed,
        INPUTS,
        known_inputs=known,
        retry={"failed", "retry-new", "same"},
    )
    assert reasons(plan) == {
        "new": "new",
        "changed": "fingerprint changed",
        "library": "library code changed",
        "two": "connector code and interface changed",
        "unknown": "code changed",
        "failed": "failed last time",
        "retry-new": "failed last time",
    }
    assert plan.skip == ["same"] and plan.delete == ["gone"]
    assert plan.to_dict()["read_reasons"]["failed last time"] == 2


def test_the_deletion_guard_counts_against_the_committed_partitions():
    def plan_keeping(kept: int, committed: int):
        state = {f"p{i}": CommittedState("v1", FINGERPRINT) for i in range(committed)}
        return partition_plan(leaves(*(f"p{i}" for i in range(kept))), state, INPUTS)

    assert plan_keeping(0, 1).deletes_too_many(0.5)  # all of them, even one
    assert plan_keeping(0, 12).deletes_too_many(1.0)  # all, whatever the fraction
    assert plan_keeping(1, 3).deletes_too_many(0.5)  # 2 of 3
    assert not plan_keeping(2, 4).deletes_too_many(0.5)  # half is not more than half
    assert not plan_keeping(3, 3).deletes_too_many(0.0)  # nothing deleted
    assert not partition_plan(leaves(), {}, INPUTS).deletes_too_many(0.5)  # nothing committed
