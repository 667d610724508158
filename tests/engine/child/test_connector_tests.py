"""The test action: a connector's test_* functions, their fixtures and reports, in-process."""

from __future__ import annotations

import pytest

from connector_engine.contract import needs_spark
from connector_engine.protocol import Limits
from tests.engine.helpers import run, with_reader

TESTS = with_reader(
    """
    import json

    def context(credentials):
        return {"root": json.loads(credentials)["root"]}

    def list_objects(context, metadata):
        if not metadata:
            yield {"name": "dir/", "fingerprint": "", "is_prefix": True}
            yield {"name": "a", "fingerprint": "1"}
        else:
            yield {"name": "dir/b", "fingerprint": "2"}

    def double(n):
        return n * 2

    def test_passes(context, credentials):
        print("checking", context["root"])
        assert context["root"] == "/data"
        assert "root" in credentials

    def test_fails():
        expected = 5
        assert double(2) == expected

    def test_fails_with_a_message(objects):
        assert len(objects) == 3, "three leaves"

    def test_errors():
        return {}["missing"]

    def test_objects(objects):
        assert [o["name"] for o in objects] == ["a", "dir/b"]

    def test_unknown_fixture(database):
        pass

    def helper_not_a_test():
        raise RuntimeError("never called")
    """
)


def line_of(text: str) -> int:
    return TESTS.splitlines().index(text) + 1


def reports(**fields):
    outcome = run("test", TESTS, credentials='{"root": "/data"}', **fields)
    return outcome, {report["name"]: report for report in outcome.result["tests"]}


def test_it_runs_every_test_and_reports_each():
    outcome, by_name = reports()
    assert not outcome.ok and outcome.error["type"] == "TestsFailed"
    assert list(by_name) == [
        "test_passes",
        "test_fails",
        "test_fails_with_a_message",
        "test_errors",
        "test_objects",
        "test_unknown_fixture",
    ]
    assert {k: outcome.result[k] for k in ("passed", "failed", "errors", "total")} == {
        "passed": 2,
        "failed": 2,
        "errors": 2,
        "total": 6,
    }
    for report in by_name.values():
        assert isinstance(report["duration_ms"], int) and report["duration_ms"] >= 0


def test_a_passing_test_keeps_its_output():
    _, by_name = reports()
    assert by_name["test_passes"]["outcome"] == "passed"
    assert by_name["test_passes"]["logs"] == "checking /data\n"


def test_a_failing_compare_shows_both_values():
    _, by_name = reports()
    failed = by_name["test_fails"]
    assert failed["outcome"] == "failed"
    assert (failed["left"], failed["right"]) == ("4", "5")
    assert failed["message"] == "assert 4 == 5\n where: double(2) == expected"
    assert failed["expression"] == "double(2) == expected"
    assert failed["line"] == line_of("    assert double(2) == expected")


def test_an_assert_message_comes_first():
    _, by_name = reports()
    failed = by_name["test_fails_with_a_message"]
    assert failed["message"].startswith("three leaves\nassert 2 == 3")


def test_an_exception_is_an_error_with_its_line():
    _, by_name = reports()
    errored = by_name["test_errors"]
    assert errored["outcome"] == "error"
    assert errored["message"] == "KeyError: 'missing'"
    assert (
        errored["line"] == line_of('    return {}["missing"]')
        and "KeyError" in errored["traceback"]
    )


def test_objects_are_the_listings_leaves_and_unknown_fixtures_are_errors():
    _, by_name = reports()
    assert by_name["test_objects"]["outcome"] == "passed"
    unknown = by_name["test_unknown_fixture"]
    assert (
        unknown["outcome"] == "error" and "`database`, which is not a fixture" in unknown["message"]
    )


def test_objects_are_bounded_by_max_objects():
    _, by_name = reports(limits=Limits(max_objects=2))
    assert by_name["test_objects"]["outcome"] == "failed"


def test_all_passing_is_ok_and_no_tests_is_ok():
    code = with_reader(
        """
        def list_objects(context, metadata):
            yield {"name": "a", "fingerprint": "1"}

        def test_one():
            assert 1 + 1 == 2
        """
    )
    outcome = run("test", code)
    assert outcome.ok and outcome.error is None and outcome.result["passed"] == 1
    empty = run("test", with_reader("def list_objects(context, metadata):\n    yield from ()\n"))
    assert empty.ok and empty.result["tests"] == []


def test_library_test_functions_are_not_the_connectors():
    code = with_reader("def list_objects(context, metadata):\n    yield from ()\n")
    outcome = run("test", code, library_code="def test_in_library():\n    assert False\n")
    assert outcome.ok and outcome.result["tests"] == []


@pytest.mark.parametrize("action", ["context", "list", "read", "schema"])
def test_previews_never_call_test_functions(action):
    code = with_reader(
        """
        def list_objects(context, metadata):
            yield {"name": "a", "fingerprint": "1"}

        def test_explodes():
            raise SystemExit("a test function was called")
        """
    )
    outcome = run(action, code)
    assert outcome.ok, outcome.error


def test_only_tests_that_ask_for_spark_need_it():
    asks = "def test_a(spark):\n    pass\n"
    assert needs_spark(asks, "test", "pandas") is True
    assert needs_spark("def test_a(context):\n    pass\n", "test", "spark") is False
    assert needs_spark(asks, "list", "pandas") is False
