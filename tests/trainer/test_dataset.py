"""Every way a CSV can be wrong: fixed, reported, or refused with a clear message."""

from __future__ import annotations

import pytest

from services.trainer.dataset import DatasetError, parse
from tests.conftest import clinc_rows, to_csv


def test_clean_file_keeps_every_row() -> None:
    rows = clinc_rows(labels=3, per_label=10)
    data = parse(to_csv(rows))
    assert len(data.texts) == 30 and data.classes == sorted({r[1] for r in rows})
    assert data.report["rows_dropped"] == 0


def test_bom_semicolons_quoted_newlines_and_header_case() -> None:
    body = ('\ufeffText;Label\n"line one\nline two";a\n"it\'s ""quoted""; ok";a\n'
            "b1;b\nb2;b\n").encode()
    data = parse(body)
    assert data.texts[0] == "line one line two"  # cleaned: whitespace collapsed
    assert data.texts[1] == 'it\'s "quoted"; ok'
    assert data.report["text_column"] == "Text"


def test_tab_separated() -> None:
    data = parse(to_csv(clinc_rows(labels=2, per_label=5), delimiter="\t"))
    assert len(data.texts) == 10


def test_drops_are_counted_with_reasons() -> None:
    rows = [("hello there", "a"), ("hello  there", "a"), ("   ", "a"), ("x", ""),
            ("same text", "a"), ("same text", "b"), ("a1", "a"), ("a2", "a"), ("b1", "b"),
            ("b2", "b"), ("lonely", "c")]
    data = parse(to_csv(rows) + b"only-one-field\n")
    dropped = {k: v["rows"] for k, v in data.report["dropped"].items()}
    assert dropped == {"duplicate": 1, "empty_text": 1, "empty_label": 1,
                       "conflicting_labels": 2, "malformed_row": 1}
    assert data.classes == ["a", "b", "c"] and "same text" not in data.texts
    assert data.report["dropped"]["conflicting_labels"]["examples"][0]["labels"] == ["a", "b"]


def test_oos_rows_are_kept_apart() -> None:
    rows = clinc_rows(labels=2, per_label=5) + [("what is the meaning of life", "oos")]
    data = parse(to_csv(rows), oos_label="oos")
    assert data.oos_texts == ["what is the meaning of life"] and "oos" not in data.classes


@pytest.mark.parametrize(("body", "message"), [
    (b"", "empty"),
    (b"text,label\n", "at least 2 labels"),
    (b"phrase,intent\nhi,a\n", "missing column(s) 'text', 'label'"),
    (b"text,label\n" + b"hi,a\nho,a\nhu,a\n", "found 1 (a)"),
    (b"text,label\na1,a\nb1,b\nb2,b\n", "2 or more examples each (one is held out to measure "
                                        "the head), found 1 (b)"),
    ("text,label\ncaf\u00e9,a\n".encode("latin-1"), "not UTF-8 (bad byte at offset 14, line 2)"),
    (b"PK\x03\x04rest-of-a-zip", "Excel (.xlsx)"),
    (b"\x00\x01\x02binary", "binary file"),
    ("text,label\nhi,a\n".encode("utf-16"), "UTF-16"),
])
def test_unusable_files_get_a_clear_error(body: bytes, message: str) -> None:
    with pytest.raises(DatasetError, match=None) as info:
        parse(body)
    assert message in str(info.value)


def test_row_limit() -> None:
    with pytest.raises(DatasetError, match="more than 10 rows"):
        parse(to_csv(clinc_rows(labels=2, per_label=10)), max_rows=10)


def test_fingerprint_ignores_row_order() -> None:
    rows = clinc_rows(labels=2, per_label=5)
    assert parse(to_csv(rows)).fingerprint() == parse(to_csv(rows[::-1])).fingerprint()
    assert parse(to_csv(rows)).fingerprint() != parse(to_csv(rows[1:])).fingerprint()


def test_every_dropped_label_is_named_with_its_reason() -> None:
    rows = [(f"a{i}", "a") for i in range(3)] + [(f"b{i}", "b") for i in range(3)] + [
        ("c1", "c"), ("shared", "d"), ("shared", "a")]
    data = parse(to_csv(rows))
    assert data.classes == ["a", "b", "c"]  # a label with one example trains
    assert data.report["dropped_labels"] == {"d": "every row conflicts with another label"}
    assert data.report["warnings"] == [
        "labels dropped, the head will not know them: d (every row conflicts with another "
        "label)", "labels with one example train but cannot be measured: c"]


def test_a_label_with_one_example_trains_and_two_labels_must_be_measurable() -> None:
    rows = [("a1", "a"), ("a2", "a"), ("b1", "b"), ("b2", "b"), ("c1", "c")]
    data = parse(to_csv(rows))
    assert data.classes == ["a", "b", "c"] and data.report["dropped_labels"] == {}
    assert data.report["warnings"] == ["labels with one example train but cannot be measured: c"]
    with pytest.raises(DatasetError, match=r"2 labels with 2 or more examples each .* found 1 "
                                           r"\(a\)"):
        parse(to_csv([("a1", "a"), ("a2", "a"), ("b1", "b")]))


def test_an_oos_label_that_matches_no_row_is_a_warning() -> None:
    rows = clinc_rows(labels=2, per_label=5) + [("play something", "oos"), ("sing", "oos")]
    data = parse(to_csv(rows), oos_label="OOS")
    assert data.report["oos_rows"] == 0 and "oos" in data.classes  # learned as a class
    assert data.report["warnings"] == ["oos_label 'OOS' matches no row (labels are "
                                       "case-sensitive): the data has no out-of-scope examples"]
    assert parse(to_csv(rows), oos_label="oos").report["warnings"] == []
