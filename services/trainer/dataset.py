"""Turn an uploaded CSV into clean training rows, or a clear error, before any compute.

Everything a person can get wrong in a spreadsheet export is either fixed (BOM, delimiter,
quoted newlines, stray whitespace) or reported: rows dropped and why, with examples, so the
training report says exactly what the head learned from.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from shared.text import clean

_BINARY_MAGIC = {b"PK\x03\x04": "a ZIP or Excel (.xlsx) file",
                 b"\xd0\xcf\x11\xe0": "an Excel (.xls) file",
                 b"%PDF": "a PDF", b"\x89PNG": "a PNG image", b"\x1f\x8b": "a gzip file"}
_DELIMITERS = ",;\t|"
EXAMPLES = 5  # examples kept per drop reason
MAX_TEXT_CHARS = 8192  # the embedder's default limit: a longer text could never be embedded
MAX_LABEL_CHARS = 200  # labels are stored, reported and sent back as feedback


class DatasetError(ValueError):
    """The file cannot be trained on; the message says what to fix."""


@dataclass
class Dataset:
    texts: list[str]
    labels: list[str]
    report: dict[str, Any]
    oos_texts: list[str] = field(default_factory=list)  # rows labelled with ``oos_label``

    @property
    def classes(self) -> list[str]:
        return sorted(set(self.labels))

    def fingerprint(self) -> str:
        """sha256 of the rows trained on: equal data gives an equal fingerprint."""
        digest = hashlib.sha256()
        for text, label in sorted(zip(self.texts, self.labels, strict=True)):
            digest.update(f"{label}\x1f{text}\x1e".encode())
        for text in sorted(self.oos_texts):
            digest.update(f"\x00oos\x1f{text}\x1e".encode())
        return digest.hexdigest()


class _Drops:
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.examples: dict[str, list[Any]] = defaultdict(list)

    def add(self, reason: str, example: Any, n: int = 1) -> None:
        self.counts[reason] += n
        if len(self.examples[reason]) < EXAMPLES:
            self.examples[reason].append(example)

    def report(self) -> dict[str, Any]:
        return {reason: {"rows": n, "examples": self.examples[reason]}
                for reason, n in self.counts.items()}


def decode(data: bytes) -> str:
    """UTF-8 with or without BOM; anything else is a clear error naming the offset."""
    for magic, kind in _BINARY_MAGIC.items():
        if data.startswith(magic):
            raise DatasetError(f"the upload is {kind}, not a CSV: export it as CSV (UTF-8)")
    if b"\x00" in data[:8192]:
        raise DatasetError("the upload is a binary file, not a CSV (or is UTF-16: save as UTF-8)")
    try:
        content = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise DatasetError(f"the file is not UTF-8 (bad byte at offset {exc.start}, line {line}); "
                           "save it as CSV UTF-8") from None
    if "\x00" in content:  # text never holds NUL; PostgreSQL could not store it either
        line = content[:content.index("\x00")].count("\n") + 1
        raise DatasetError(f"the file holds a NUL character (line {line}): it is corrupted or "
                           "not a text file")
    return content


def _delimiter(sample: str, columns: tuple[str, str]) -> str:
    """The delimiter that splits the header into the expected columns, else a sniffed one.
    (Only the delimiter: the sniffer's quote-character guesses misfire on apostrophes.)"""
    header = sample.split("\n", 1)[0]
    wanted = {c.strip().lower() for c in columns}
    for d in _DELIMITERS:
        if wanted <= {cell.strip().strip('"').lower() for cell in header.split(d)}:
            return d
    try:
        return csv.Sniffer().sniff(sample, delimiters=_DELIMITERS).delimiter
    except csv.Error:
        counts = {d: header.count(d) for d in _DELIMITERS}
        return max(counts, key=lambda d: counts[d]) if any(counts.values()) else ","


def parse(data: bytes, *, text_column: str = "text", label_column: str = "label",
          oos_label: str | None = None, max_rows: int = 1_000_000) -> Dataset:
    """Validate and clean a ``text,label`` CSV. Raises :class:`DatasetError` when nothing usable
    remains; otherwise reports every dropped row by reason."""
    raw, drops, columns = _read(data, text_column, label_column, max_rows)
    return from_rows(raw, drops=drops, oos_label=oos_label, columns=columns)


def stored_rows(data: bytes) -> list[tuple[int, str, str]]:
    """The ``(line, text, label)`` rows of a ``text,label`` CSV the trainer wrote itself (a
    version's training rows), as written: :func:`from_rows` checks them with the rest."""
    return _read(data, "text", "label", max_rows=2**62)[0]


def _read(data: bytes, text_column: str, label_column: str, max_rows: int
          ) -> tuple[list[tuple[int, str, str]], _Drops, tuple[str, str]]:
    """The CSV's ``(line, text, label)`` rows, the malformed ones dropped, and the column names."""
    content = decode(data)
    if not content.strip():
        raise DatasetError("the file is empty")
    delimiter = _delimiter(content[:64 * 1024], (text_column, label_column))
    reader = csv.reader(io.StringIO(content, newline=""), delimiter=delimiter,
                        quotechar='"', doublequote=True, strict=False)
    try:
        header = next(reader)
    except csv.Error as exc:
        raise DatasetError(f"the file is not a readable CSV: {exc}") from None
    names = [h.strip().lower() for h in header]
    missing = [c for c in (text_column, label_column) if c.strip().lower() not in names]
    if missing:
        raise DatasetError(
            f"missing column(s) {', '.join(repr(m) for m in missing)}; the header has "
            f"{', '.join(repr(h) for h in header[:20]) or 'no columns'}. Name the columns "
            "text,label or pass text_column / label_column")
    ti, li = names.index(text_column.strip().lower()), names.index(label_column.strip().lower())

    raw: list[tuple[int, str, str]] = []
    drops = _Drops()
    try:
        for line_no, row in enumerate(reader, start=2):
            if not row or not any(cell.strip() for cell in row):
                continue  # blank line
            if len(raw) + sum(drops.counts.values()) >= max_rows:
                raise DatasetError(f"the file has more than {max_rows} rows (the configured limit)")
            if len(row) <= max(ti, li) or len(row) > len(header):
                # Too few fields, or more than the header (an unquoted delimiter in a text
                # would otherwise shift the label silently).
                drops.add("malformed_row", {"line": line_no, "fields": len(row),
                                            "expected": len(header)})
                continue
            raw.append((line_no, row[ti], row[li]))
    except csv.Error as exc:
        hint = " (an unclosed quote?)" if "field larger" in str(exc) else ""
        raise DatasetError(f"the CSV is broken near line {reader.line_num}: {exc}{hint}") from None
    return raw, drops, (header[ti].strip(), header[li].strip())


def from_rows(raw: Sequence[tuple[int | str, str, str]], *, oos_label: str | None = None,
              drops: _Drops | None = None,
              columns: tuple[str, str] = ("text", "label")) -> Dataset:
    """Clean ``(line or id, text, label)`` rows: the checks every data source goes through."""
    drops = drops or _Drops()
    rows_read = len(raw) + sum(drops.counts.values())
    seen: dict[str, set[str]] = defaultdict(set)
    order: list[tuple[str, str]] = []
    for line_no, raw_text, raw_label in raw:
        text, label = clean(raw_text), raw_label.strip()
        if not text:
            drops.add("empty_text", {"line": line_no, "label": label})
        elif len(text) > MAX_TEXT_CHARS:
            drops.add("text_too_long", {"line": line_no, "chars": len(text), "label": label[:200]})
        elif len(label) > MAX_LABEL_CHARS:
            drops.add("label_too_long", {"line": line_no, "chars": len(label)})
        elif not label:
            drops.add("empty_label", {"line": line_no, "text": text[:200]})
        elif label in seen[text]:
            drops.add("duplicate", {"line": line_no, "text": text[:200], "label": label})
        else:
            seen[text].add(label)
            order.append((text, label))

    # The same text with two labels teaches nothing but noise: drop every copy, report them.
    conflicting = {t for t, labels in seen.items() if len(labels) > 1}
    for text in conflicting:
        drops.add("conflicting_labels", {"text": text[:200], "labels": sorted(seen[text])},
                  n=len(seen[text]))
    rows = [(t, lab) for t, lab in order if t not in conflicting]
    oos = [t for t, lab in rows if oos_label is not None and lab == oos_label]
    rows = [(t, lab) for t, lab in rows if oos_label is None or lab != oos_label]

    counts = Counter(lab for _, lab in rows)
    classes = sorted(counts)
    # Every label the data has but the head will not learn is named, with the reason.
    lost = sorted({lab for _, lab in order if lab != oos_label} - set(classes))
    dropped_labels = dict.fromkeys(lost, "every row conflicts with another label")
    warnings: list[str] = []
    if dropped_labels:
        warnings.append("labels dropped, the head will not know them: " + ", ".join(
            f"{lab} ({why})" for lab, why in dropped_labels.items()))
    if oos_label is not None and not oos:
        warnings.append(f"oos_label {oos_label!r} matches no row (labels are case-sensitive): "
                        "the data has no out-of-scope examples")
    # Cross-validation holds out at least one example of a label: one with a single example
    # trains but is never measured, and two measurable labels are the least to measure.
    measurable = sorted(lab for lab, n in counts.items() if n >= 2)
    if len(measurable) < 2:
        raise DatasetError("need at least 2 labels with 2 or more examples each (one is held "
                           f"out to measure the head), found {len(measurable)} "
                           f"({', '.join(measurable) or 'none'})")
    if len(measurable) < len(classes):
        warnings.append("labels with one example train but cannot be measured: " + ", ".join(
            sorted(set(classes) - set(measurable))[:10]))
    report = {"rows_read": rows_read, "rows_used": len(rows), "oos_rows": len(oos),
              "rows_dropped": sum(drops.counts.values()), "dropped": drops.report(),
              "classes": len(classes),
              "class_counts": dict(sorted(Counter(lab for _, lab in rows).items())),
              "dropped_labels": dropped_labels, "warnings": warnings,
              "text_column": columns[0], "label_column": columns[1]}
    return Dataset(texts=[t for t, _ in rows], labels=[lab for _, lab in rows],
                   report=report, oos_texts=oos)
