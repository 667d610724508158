"""Listing: breadth-first prefix expansion, validation of every yielded item, limits."""

from __future__ import annotations

import time

import pytest

from connector_engine.child.listing import (
    ObjectValidator,
    expand_prefix,
    first_leaf,
    list_tree,
    validate_item,
)
from connector_engine.protocol import Limits
from tests.engine.helpers import run, with_reader


def tree_lister(tree: dict):
    """Return a list_objects over a nested dict: dict values are prefixes, str values leaves."""

    def list_objects(context, metadata):
        node = tree if metadata is None else metadata["node"]
        for name, child in node.items():
            if isinstance(child, dict):
                yield {"name": name, "is_prefix": True, "node": child}
            else:
                yield {"name": name, "fingerprint": child}

    return list_objects


NESTED = {
    "a": {"a/b": {"a/b/c": {"a/b/c/leaf3": "f3"}, "a/b/leaf2": "f2"}, "a/leaf1": "f1"},
    "root.csv": "f0",
}


def test_nested_prefixes_three_deep_breadth_first():
    listing = list_tree(tree_lister(NESTED), {}, Limits())
    summary = [(o.name, o.parent, o.depth, o.is_prefix) for o in listing.objects]
    assert summary == [
        ("a", None, 0, True),
        ("root.csv", None, 0, False),
        ("a/b", "a", 1, True),
        ("a/leaf1", "a", 1, False),
        ("a/b/c", "a/b", 2, True),
        ("a/b/leaf2", "a/b", 2, False),
        ("a/b/c/leaf3", "a/b/c", 3, False),
    ]
    assert listing.leaf_count == 4
    assert not listing.truncated
    assert listing.problems == []


def test_max_depth_truncates():
    listing = list_tree(tree_lister(NESTED), {}, Limits(max_depth=1))
    assert [o.name for o in listing.objects] == ["a", "root.csv", "a/b", "a/leaf1"]
    assert listing.truncated


def test_max_objects_truncates():
    listing = list_tree(tree_lister(NESTED), {}, Limits(max_objects=3))
    assert len(listing.objects) == 3
    assert listing.truncated


def test_exactly_max_objects_is_not_truncated():
    listing = list_tree(tree_lister({"x": "1", "y": "2"}), {}, Limits(max_objects=2))
    assert len(listing.objects) == 2
    assert not listing.truncated


def test_expand_one_prefix_one_level():
    prefix = {"name": "a", "is_prefix": True, "node": NESTED["a"]}
    listing = expand_prefix(tree_lister(NESTED), {}, prefix, Limits())
    assert [(o.name, o.parent, o.depth) for o in listing.objects] == [
        ("a/b", "a", 1),
        ("a/leaf1", "a", 1),
    ]
    assert not listing.truncated


def test_cycle_stops_at_max_depth():
    def list_objects(context, metadata):
        yield {"name": "loop", "is_prefix": True}

    listing = list_tree(list_objects, {}, Limits(max_depth=5))
    assert len(listing.objects) == 6
    assert listing.truncated


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("just a string", "not a dict"),
        (["name", "x"], "yielded a list, not a dict"),
        ({"fingerprint": "1"}, "missing key 'name'"),
        ({"name": 1, "fingerprint": "1"}, "'name' must be a string, not an int"),
        ({"name": "", "fingerprint": "1"}, "'name' must not be empty"),
        ({"name": "a"}, "missing key 'fingerprint'"),
        ({"name": "a", "fingerprint": 3.5}, "'fingerprint' must be a string, not a float"),
        ({"name": "a", "fingerprint": None}, "'fingerprint' must be a string, not None"),
        ({"name": "a", "fingerprint": ""}, "'fingerprint' must not be empty"),
        ({"name": "a", "fingerprint": "1", "is_prefix": "no"}, "'is_prefix' must be True or False"),
        ({"name": "a", "fingerprint": "1", "is_prefix": None}, "'is_prefix' must be True or False"),
        ({"name": "p", "is_prefix": True, "fingerprint": 5}, "a prefix's 'fingerprint'"),
    ],
)
def test_each_bad_item_kind(item, message):
    messages = validate_item(item)
    assert any(message in m for m in messages), messages


def test_prefix_needs_no_fingerprint():
    assert validate_item({"name": "p", "is_prefix": True}) == []
    assert validate_item({"name": "p", "is_prefix": True, "fingerprint": None}) == []


def test_bad_items_are_reported_with_the_item_and_skipped():
    def list_objects(context, metadata):
        yield {"name": "ok", "fingerprint": "1"}
        yield {"name": "bad", "fingerprint": 7, "extra": object()}
        yield None
        yield {"name": "ok2", "fingerprint": "2"}

    listing = list_tree(list_objects, {}, Limits())
    assert [o.name for o in listing.objects] == ["ok", "ok2"]
    first, second = listing.problems
    assert first.object["name"] == "bad"
    assert first.object["extra"].startswith("<object")  # JSON-safe copy of the item
    assert second.object == "None"
    assert "yielded None" in second.message


def test_duplicate_leaf_names_keep_the_first():
    def list_objects(context, metadata):
        if metadata is None:
            yield {"name": "x", "fingerprint": "1"}
            yield {"name": "p", "is_prefix": True}
        else:
            yield {"name": "x", "fingerprint": "2"}

    listing = list_tree(list_objects, {}, Limits())
    assert [(o.name, o.fingerprint) for o in listing.objects if not o.is_prefix] == [("x", "1")]
    (problem,) = listing.problems
    assert "duplicate leaf name 'x'" in problem.message
    assert "at the root" in problem.message
    assert problem.object["fingerprint"] == "2"


def test_validator_tracks_duplicates_across_calls():
    validator = ObjectValidator()
    assert validator.check({"name": "a", "fingerprint": "1"}, None, 0)[0] is not None
    obj, messages = validator.check({"name": "a", "fingerprint": "1"}, "p", 1)
    assert obj is None
    assert "duplicate" in messages[0]


def test_generator_raising_midway_keeps_earlier_objects():
    def list_objects(context, metadata):
        yield {"name": "a", "fingerprint": "1"}
        yield {"name": "b", "fingerprint": "2"}
        raise RuntimeError("page 2 failed")

    listing = list_tree(list_objects, {}, Limits())
    assert [o.name for o in listing.objects] == ["a", "b"]
    assert isinstance(listing.error, RuntimeError)
    assert listing.error_prefix is None


def test_error_while_expanding_a_prefix_records_the_prefix():
    def list_objects(context, metadata):
        if metadata is None:
            yield {"name": "p", "is_prefix": True}
        else:
            raise KeyError("path")

    listing = list_tree(list_objects, {}, Limits())
    assert [o.name for o in listing.objects] == ["p"]
    assert listing.error_prefix == {"name": "p", "is_prefix": True}


def test_list_objects_may_return_a_list():
    listing = list_tree(lambda context, metadata: [{"name": "a", "fingerprint": "1"}], {}, Limits())
    assert listing.leaf_count == 1


def test_first_leaf_lists_lazily_and_closes_the_generator():
    seen, closed = [], []

    def list_objects(context, metadata):
        try:
            for index in range(1_000_000):
                seen.append(index)
                yield {"name": f"f{index}", "fingerprint": "1"}
        finally:
            closed.append(True)

    leaf, _ = first_leaf(list_objects, {}, Limits())
    assert leaf is not None
    assert leaf.name == "f0"
    assert len(seen) == 1
    assert closed == [True]


def test_first_leaf_skips_prefixes_and_invalid_items():
    leaf, _ = first_leaf(tree_lister({"p": {"p/x": "1"}, "bad": ""}), {}, Limits())
    assert leaf is not None
    assert leaf.name == "p/x"


def test_result_shape():
    result = list_tree(tree_lister(NESTED), {}, Limits()).to_result()
    first = result["objects"][0]
    assert set(first) == {"name", "fingerprint", "is_prefix", "parent", "depth", "metadata"}
    assert first["metadata"]["name"] == "a"
    assert result["leaf_count"] == 4
    assert result["truncated"] is False
    assert result["problems"] == []


def test_problems_are_capped_and_endless_bad_streams_stop():
    def list_objects(context, metadata):
        while True:
            yield 1

    listing = list_tree(list_objects, {}, Limits(max_objects=5000))
    assert len(listing.problems) == 1000
    assert listing.problem_count == 5001
    assert listing.truncated


def test_listing_100k_leaves_is_fast():
    def list_objects(context, metadata):
        if metadata is None:
            for p in range(1000):
                yield {"name": f"p{p}", "is_prefix": True}
        else:
            prefix = metadata["name"]
            for i in range(100):
                yield {"name": f"{prefix}/f{i}", "fingerprint": "v1", "size": i}

    started = time.perf_counter()
    listing = list_tree(list_objects, {}, Limits(max_objects=200_000))
    result = listing.to_result()
    elapsed = time.perf_counter() - started
    assert result["leaf_count"] == 100_000
    assert not result["truncated"]
    print(f"listed and validated 100,000 leaves in {elapsed:.3f} s")


# ---------------------------------------------------------------- through execute()


def test_list_action_reports_problems_but_is_ok():
    outcome = run(
        "list",
        with_reader(
            """
        def list_objects(context, metadata):
            yield {"name": "a", "fingerprint": "1"}
            yield {"name": "a", "fingerprint": "1"}
        """
        ),
    )
    assert outcome.ok
    assert outcome.result["leaf_count"] == 1
    assert outcome.result["problems"][0]["object"] == {"name": "a", "fingerprint": "1"}


def test_list_action_generator_raising_is_not_ok_but_keeps_result():
    outcome = run(
        "list",
        with_reader(
            """
        def list_objects(context, metadata):
            yield {"name": "a", "fingerprint": "1"}
            raise ValueError("boom")
        """
        ),
    )
    assert not outcome.ok
    assert [o["name"] for o in outcome.result["objects"]] == ["a"]
    assert outcome.error["type"] == "ValueError"
    assert outcome.error["function"] == "list_objects"
    assert outcome.error["line"] == 4


@pytest.mark.parametrize("returned", ["None", "42", "{'name': 'a'}", "'abc'"])
def test_list_objects_returning_a_non_iterable_is_a_clear_error(returned):
    outcome = run(
        "list", with_reader(f"def list_objects(context, metadata):\n    return {returned}\n")
    )
    assert not outcome.ok
    assert outcome.error["type"] == "ContractError"
    assert "list_objects returned" in outcome.error["message"]
    assert outcome.error["line"] == 1


@pytest.mark.parametrize(
    "root_test", ["if not metadata:", "if metadata is None:", "if metadata in (None, {}):"]
)
def test_dict_style_root_code_works(root_test):
    code = f"""
    def list_objects(context, metadata):
        {root_test}
            yield {{"name": "dir", "is_prefix": True, "path": "/dir"}}
        else:
            yield {{"name": metadata["path"] + "/a", "fingerprint": "1"}}
    """
    outcome = run("list", with_reader(code))
    assert outcome.ok, outcome.error
    assert [o["name"] for o in outcome.result["objects"]] == ["dir", "/dir/a"]


def test_metadata_or_empty_dict_idiom_works():
    code = """
    def list_objects(context, metadata):
        metadata = metadata or {}
        path = metadata.get("path", "")
        if not path:
            yield {"name": "dir", "is_prefix": True, "path": "/dir"}
        else:
            yield {"name": path + "/a", "fingerprint": "1"}
    """
    outcome = run("list", with_reader(code))
    assert outcome.ok
    assert outcome.result["leaf_count"] == 1


def test_get_on_none_root_gets_a_hint():
    code = """
    def list_objects(context, metadata):
        yield {"name": metadata.get("path", "x"), "fingerprint": "1"}
    """
    outcome = run("list", with_reader(code))
    assert outcome.error["type"] == "AttributeError"
    assert "metadata or {}" in outcome.error["message"]


def test_list_action_expands_one_prefix():
    code = """
    def list_objects(context, metadata):
        if metadata is None:
            yield {"name": "p", "is_prefix": True}
        else:
            yield {"name": metadata["name"] + "/sub", "is_prefix": True}
            yield {"name": metadata["name"] + "/x", "fingerprint": "1"}
    """
    outcome = run("list", with_reader(code), object={"name": "p", "is_prefix": True})
    assert outcome.ok
    assert [(o["name"], o["parent"]) for o in outcome.result["objects"]] == [
        ("p/sub", "p"),
        ("p/x", "p"),
    ]
    assert outcome.result["truncated"] is False


def test_list_action_empty_object_lists_from_the_root():
    code = "def list_objects(context, metadata):\n    yield {'name': 'a', 'fingerprint': '1'}\n"
    outcome = run("list", with_reader(code), object={})
    assert outcome.ok
    assert outcome.result["leaf_count"] == 1


def test_list_action_rejects_expanding_a_leaf():
    code = "def list_objects(context, metadata):\n    yield {'name': 'a', 'fingerprint': '1'}\n"
    outcome = run("list", with_reader(code), object={"name": "a", "fingerprint": "1"})
    assert outcome.error["type"] == "InvalidRequest"
