"""Step by step: context and listing run before the reader exists; reading needs it."""

from __future__ import annotations

import pytest

from tests.engine.helpers import run

NO_READER = """
def context(credentials):
    return {"token": "abc"}

def list_objects(context, metadata):
    yield {"name": "a.csv", "fingerprint": "v1"}

def test_listing(objects):
    assert objects
"""

MESSAGES = {
    "pandas": "The pandas interface needs read_pandas_dataframe(context, metadata) to read a "
    "partition; add it (see the template).",
    "spark": "The spark interface needs read_spark_dataframe(spark, context, metadata) to read "
    "a partition; add it (see the template).",
    "bytes": "The bytes interface needs read_bytes(context, metadata) to read a partition; add "
    "it (see the template).",
}


@pytest.mark.parametrize("interface", ["pandas", "spark", "bytes"])
def test_it_previews_the_context_without_a_reader(interface):
    outcome = run("context", NO_READER, interface=interface)
    assert outcome.ok, outcome.error
    assert outcome.result["items"][0]["key"] == "token"


@pytest.mark.parametrize("interface", ["pandas", "spark", "bytes"])
def test_it_lists_without_a_reader(interface):
    outcome = run("list", NO_READER, interface=interface)
    assert outcome.ok, outcome.error
    assert [o["name"] for o in outcome.result["objects"]] == ["a.csv"]


@pytest.mark.parametrize("action", ["read", "schema", "test"])
@pytest.mark.parametrize("interface", ["pandas", "spark", "bytes"])
def test_it_needs_the_reader_to_read_a_partition(action, interface):
    outcome = run(action, NO_READER, interface=interface, parser="csv")
    assert not outcome.ok
    assert outcome.error["type"] == "ContractError"
    assert outcome.error["message"] == MESSAGES[interface]
    assert outcome.error["problems"][0]["severity"] == "error"


def test_a_star_import_without_the_reader_fails_the_read_by_name():
    # The static check cannot tell what a star import provides: the loaded module is checked.
    outcome = run("read", "from library import *\n", library_code=NO_READER)
    assert outcome.error["type"] == "ContractError"
    assert outcome.error["message"] == MESSAGES["pandas"]
