"""Column profiles: over the partition up to the row budget, with histograms."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa

from connector_engine.profile import MAX_BINS, column_profile, histogram, profile_scope
from connector_engine.protocol import Limits
from tests.engine.helpers import run


def by_name(profile):
    return {entry["name"]: entry for entry in profile}


def test_it_profiles_columns():
    table = pa.table(
        {
            "n": [3, None, 1, 3],
            "s": ["b", "a", None, None],
            "d": pa.array([None, None, None, None], pa.timestamp("ns")),
            "l": [[1], [2], None, [1]],
        }
    )
    profile = by_name(column_profile(table))
    n = profile["n"]
    assert (n["type"], n["nulls"], n["null_pct"], n["distinct"]) == ("int64", 1, 25.0, 2)
    assert (n["min"], n["max"]) == (1, 3)
    assert n["histogram"] == {
        "kind": "integer",
        "edges": [1, 2, 3, 4],
        "counts": [1, 0, 2],
        "per_value": True,
    }
    s = profile["s"]
    assert (s["null_pct"], s["distinct"], s["min"], s["max"]) == (50.0, 2, "a", "b")
    assert s["histogram"] is None  # strings get none
    assert profile["d"]["null_pct"] == 100.0 and profile["d"]["min"] is None
    assert profile["d"]["histogram"] is None  # nothing to bin
    assert profile["l"]["min"] is None and profile["l"]["histogram"] is None


def test_histogram_bins_sum_to_the_non_null_count():
    values = [float(i % 997) * 1.5 for i in range(5000)] + [None] * 7
    column = pa.chunked_array([pa.array(values[:2500]), pa.array(values[2500:])])
    found = histogram(column)
    assert found["kind"] == "number"
    assert len(found["counts"]) == MAX_BINS and len(found["edges"]) == MAX_BINS + 1
    assert sum(found["counts"]) == 5000
    assert found["edges"][0] == 0.0 and found["edges"][-1] == 996 * 1.5


def test_a_wide_integer_column_gets_at_most_max_bins():
    found = histogram(pa.chunked_array([pa.array(range(-500, 100_000, 7))]))
    assert len(found["counts"]) == MAX_BINS
    assert sum(found["counts"]) == len(range(-500, 100_000, 7))


def test_nan_and_infinities_are_counted_apart():
    found = histogram(pa.chunked_array([pa.array([1.0, 2.0, float("nan"), float("inf"), None])]))
    assert sum(found["counts"]) == 2
    assert found["not_finite"] == 2


def test_a_constant_column_has_one_bin():
    found = histogram(pa.chunked_array([pa.array([2.5, 2.5, 2.5])]))
    assert found["counts"] == [3]


def test_dates_and_timestamps_get_histograms():
    days = [dt.date(2024, 1, 1) + dt.timedelta(days=i) for i in range(100)]
    table = pa.table(
        {
            "day": [*days, None],
            "at": pa.array(
                [dt.datetime(2024, 5, 1, tzinfo=dt.UTC) + dt.timedelta(hours=i) for i in range(100)]
                + [None],
                pa.timestamp("us", tz="UTC"),
            ),
            "few_days": [dt.date(2024, 2, 1), dt.date(2024, 2, 3)] * 50 + [None],
        }
    )
    profile = by_name(column_profile(table))
    day = profile["day"]["histogram"]
    assert day["kind"] == "date" and sum(day["counts"]) == 100
    assert day["edges"][0] == "2024-01-01" and len(day["counts"]) == MAX_BINS
    at = profile["at"]["histogram"]
    assert at["kind"] == "datetime" and sum(at["counts"]) == 100
    assert at["edges"][0].startswith("2024-05-01T00:00:00")
    few = profile["few_days"]["histogram"]
    assert few["counts"] == [50, 0, 50]  # one bin per day when few days are spanned
    assert few["per_value"] is True and day["per_value"] is False
    assert few["edges"] == ["2024-02-01", "2024-02-02", "2024-02-03", "2024-02-04"]


def test_the_scope_says_whole_partition_or_first_rows():
    assert (
        profile_scope(250, 250, True)["note"] == "Column profile of all 250 rows of the partition"
    )
    first = profile_scope(50, 250, True)
    assert first["note"] == "Column profile of the first 50 of 250 rows (the row budget)"
    assert first["whole"] is False
    unknown = profile_scope(100_000, 100_000, False)
    assert unknown["note"] == "Column profile of the first 100,000 rows (the partition has more)"


READER = """
import pandas as pd

def list_objects(context, metadata):
    yield {"name": "big", "fingerprint": "1"}

def read_pandas_dataframe(context, metadata):
    n = 250
    return pd.DataFrame({
        "i": range(n),
        "maybe": [None if i % 5 == 0 else i for i in range(n)],
        "day": pd.date_range("2024-01-01", periods=n, freq="D").date,
    })
"""


def test_the_profile_covers_the_partition_not_just_the_rows_shown():
    outcome = run("read", READER, limits=Limits(row_limit=10))
    assert outcome.ok, outcome.error
    assert outcome.table.num_rows == 10 and outcome.result["truncated"] is True
    scope = outcome.result["profile_scope"]
    assert scope == {
        "rows": 250,
        "of_rows": 250,
        "whole": True,
        "note": "Column profile of all 250 rows of the partition",
    }
    profile = by_name(outcome.result["profile"])
    assert profile["i"]["max"] == 249 and profile["i"]["distinct"] == 250
    assert profile["maybe"]["nulls"] == 50
    assert sum(profile["maybe"]["histogram"]["counts"]) == 200
    assert sum(profile["day"]["histogram"]["counts"]) == 250
    assert profile["day"]["max"] == "2024-09-06"


def test_a_budget_smaller_than_the_partition_profiles_the_first_rows():
    outcome = run("read", READER, limits=Limits(row_limit=10, profile_row_budget=40))
    assert outcome.ok, outcome.error
    scope = outcome.result["profile_scope"]
    assert scope["note"] == "Column profile of the first 40 of 250 rows (the row budget)"
    assert not scope["whole"]
    assert by_name(outcome.result["profile"])["i"]["max"] == 39
    assert outcome.result["row_count"] == 250 and outcome.table.num_rows == 10


def test_the_profile_never_covers_fewer_rows_than_shown():
    outcome = run("read", READER, limits=Limits(row_limit=60, profile_row_budget=5))
    assert outcome.result["profile_scope"]["rows"] == 60


def test_a_bytes_read_beyond_the_budget_says_the_partition_has_more():
    code = """
    def list_objects(context, metadata):
        yield {"name": "data", "fingerprint": "1"}

    def read_bytes(context, metadata):
        for index in range(10 ** 6):
            yield f"{index}\\n"
    """
    limits = Limits(row_limit=5, profile_row_budget=300)
    outcome = run("read", code, interface="bytes", parser="lines", limits=limits)
    assert outcome.ok, outcome.error
    assert outcome.table.num_rows == 5
    scope = outcome.result["profile_scope"]
    assert scope["note"] == "Column profile of the first 300 rows (the partition has more)"
    assert scope["of_rows"] is None


def test_an_ingest_read_has_no_profile():
    outcome = run("read", READER, object={"name": "big", "fingerprint": "1"}, full_table=True)
    assert outcome.ok and "profile" not in outcome.result
    assert outcome.table.num_rows == 250
