"""Payload helpers: format recognition and errors that name file, row and problem."""

from __future__ import annotations

import io
import zipfile

import pytest

from connectors.errors import ParseError
from connectors.tabular import columns, open_zip, read_csv, reject_unexpected, sniff, to_float


def _zip(name: str, body: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(name, body)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b'{"items": []}', "json"),
        (b"\xef\xbb\xbfa,b\r\n1,2\r\n", "csv"),
        (_zip("x.csv", b"a\n1\n"), "zip"),
        (b"<?xml version='1.0'?><m:OASISReport/>", "xml"),
        (b"  <!DOCTYPE html><html></html>", "html"),
        (b"\r\n ", "empty"),
    ],
)
def test_sniff_reads_the_content_not_the_name(data: bytes, kind: str) -> None:
    assert sniff(data) == kind


def test_an_error_page_is_named_with_its_title() -> None:
    page = b"<html><head><title>Access Denied</title></head></html>"
    with pytest.raises(ParseError, match=r"^f\.csv: an HTML page \('Access Denied'\)"):
        reject_unexpected(page, "f.csv", ("csv",))


def test_a_short_row_names_its_row() -> None:
    with pytest.raises(ParseError, match=r"^f\.csv, row 2: 2 fields where the header has 3"):
        read_csv(b"a,b,c\n1,2,3\n4,5\n", "f.csv")


def test_missing_columns_are_listed_with_what_was_found() -> None:
    with pytest.raises(ParseError, match=r"missing column.*total_lmp_rt; found: a, b"):
        columns(["a", "b"], ["a", "total_lmp_rt"], "f.csv")


@pytest.mark.parametrize(
    ("text", "value"), [("  -38.25", -38.25), ("1,234.5", 1234.5), ("1e3", 1000.0)]
)
def test_numbers_tolerate_padding_and_separators(text: str, value: float) -> None:
    assert to_float(text, "f", 1, "LMP") == value


@pytest.mark.parametrize("text", ["N/A", "", "nan", "inf", "12..5"])
def test_non_numbers_are_rejected_by_column_and_row(text: str) -> None:
    with pytest.raises(ParseError, match=r"^f, row 7: LMP is not a (finite )?number"):
        to_float(text, "f", 7, "LMP")


def test_a_truncated_zip_is_rejected() -> None:
    data = _zip("x.csv", b"a,b\n" * 1000)
    with pytest.raises(ParseError, match="not a readable zip"):
        open_zip(data[: len(data) // 2], "f.zip")
