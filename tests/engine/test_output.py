"""The one output cap: sizes, the marker, text capped at its head or tail, streams of chunks."""

from __future__ import annotations

from connector_engine.output import CappedOutput, cap_text, cut_marker, human_size


def test_it_names_sizes_for_people():
    assert human_size(512) == "512 bytes"
    assert human_size(3_400) == "3.4 kB"
    assert human_size(3_000_000) == "3.0 MB"
    assert cut_marker(3_000_000) == "[output cut: 3.0 MB more not shown]"


def test_it_keeps_text_under_the_limit_as_it_is():
    assert cap_text("short", 5) == "short"
    assert cap_text("short", 5, keep="tail") == "short"


def test_it_keeps_the_head_or_the_tail_and_marks_the_cut():
    text = "".join(f"line {n}\n" for n in range(1000))
    head = cap_text(text, 100)
    assert head.startswith("line 0\n") and head.endswith("\n" + cut_marker(len(text) - 100))
    tail = cap_text(text, 100, keep="tail")
    assert tail.startswith(cut_marker(len(text) - 100) + "\n") and tail.endswith("line 999\n")


def test_it_counts_bytes_and_never_splits_a_character():
    assert cap_text("é" * 10, 5) == "éé\n" + cut_marker(15)
    assert cap_text("é" * 10, 5, keep="tail") == cut_marker(15) + "\néé"
    assert cap_text("abc", 0) == "\n" + cut_marker(3)


def test_it_caps_a_stream_of_chunks():
    output = CappedOutput(10)
    for chunk in (b"12345", b"67890abc", b"def"):
        output.add(chunk)
    assert bytes(output.data) == b"1234567890" and output.dropped == 6
    assert output.text() == "1234567890\n[output cut: 6 bytes more not shown]"
    untouched = CappedOutput(10)
    untouched.add(b"ok")
    assert untouched.text() == "ok"
