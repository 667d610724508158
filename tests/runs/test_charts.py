"""The inline SVG charts' geometry: a profile's histogram and an ingest's two bar charts."""

from __future__ import annotations

from runs.charts import CHART_HEIGHT, histogram_chart, ingest_charts, nice_ceiling


def test_a_histogram_has_a_bar_and_a_title_per_bin():
    chart = histogram_chart({"kind": "number", "edges": [0.0, 0.5, 1.0], "counts": [3, 1]})
    assert [bar["title"] for bar in chart["bars"]] == ["[0, 0.5): 3 rows", "[0.5, 1]: 1 row"]
    tall, short = chart["bars"]
    assert tall["y"] + tall["height"] == chart["height"] == short["y"] + short["height"]
    assert tall["height"] > short["height"] > 0
    assert chart["label"] == "2 bins, 4 values"


def test_per_value_bins_name_their_value():
    histogram = {
        "kind": "date",
        "edges": ["2024-02-01", "2024-02-02", "2024-02-03"],
        "counts": [5, 0],
        "per_value": True,
    }
    titles = [bar["title"] for bar in histogram_chart(histogram)["bars"]]
    assert titles == ["2024-02-01: 5 rows", "2024-02-02: 0 rows"]


def test_no_histogram_or_a_malformed_one_draws_nothing():
    assert histogram_chart(None) is None
    assert histogram_chart({"edges": [1], "counts": [1]}) is None
    assert histogram_chart({"edges": "x", "counts": []}) is None


def test_ingest_charts_have_ticks_axis_labels_and_titles():
    points = [
        {"name": "2024/a.csv", "rows": 1200, "duration_ms": 250},
        {"name": "2024/b.csv", "rows": 300, "duration_ms": 1500},
    ]
    rows, seconds = ingest_charts(points)["charts"]
    assert (rows["y_label"], seconds["y_label"]) == ("rows", "seconds")
    assert rows["x_label"] == "partitions (1 to 2, in plan order)"
    assert [tick["label"] for tick in rows["y_ticks"]] == ["0", "1,000", "2,000"]
    assert [tick["label"] for tick in seconds["y_ticks"]] == ["0", "1", "2"]
    assert [tick["label"] for tick in rows["x_ticks"]] == ["1", "2"]
    titles = ["2024/a.csv: 1,200 rows in 0.25 s", "2024/b.csv: 300 rows in 1.5 s"]
    assert [bar["title"] for bar in rows["bars"]] == titles
    assert [bar["title"] for bar in seconds["bars"]] == titles
    for chart in (rows, seconds):
        for bar in chart["bars"]:
            assert chart["left"] < bar["x"] < chart["right"]
            assert round(bar["y"] + bar["height"], 2) == chart["bottom"] < CHART_HEIGHT


def test_no_finished_reads_no_chart():
    assert ingest_charts([]) == {"bars": [], "charts": []}


def test_nice_ceiling():
    assert [nice_ceiling(v) for v in (0, 1, 3, 7, 12, 2400, 0.3)] == [1, 1, 5, 10, 20, 2500, 0.5]
