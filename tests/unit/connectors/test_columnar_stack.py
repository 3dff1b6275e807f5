"""The stacked CSV reader (connectors.columnar.csv_stack): several reports read as one table
per header line, each line rule (CsvRules) taken or declined as the row path it stands for
would read the report, and stacks that are irregular left to the row path.

A property test holds it to the two row paths the rules describe (tabular.read_csv, which
splits lines as str.splitlines does, and oasis.csv_rows, which splits at LF only): where the
reader answers, every report's header, rows and row count are the row path's."""

from __future__ import annotations

import csv

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.caiso.oasis import csv_rows
from connectors.columnar import (
    CSV,
    LABEL,
    NUMBER,
    TEXT,
    CsvRules,
    Stack,
    csv_frame,
    csv_stack,
    row_path_only,
)
from connectors.errors import ParseError
from connectors.tabular import read_csv

# A row path that splits at LF only, rejects blank lines, keeps other bytes in cells and allows
# blank column names, with reports of other headers read beside each other (as CAISO's).
LF_ONLY = CsvRules(
    lone_cr=False, blank_lines=False, splitlines=False, blank_names=True, one_header=False
)
ALIKE = CsvRules(mixed_ends=False)  # line ends alike within each stacked report (as ERCOT's)

HEADER = b"A,B,C\n"
ONE = HEADER + b"1,x,p\n2,y,q\n"
TWO = HEADER + b"3,x,r\n"


def read(*reports: bytes, rules: CsvRules = CSV, kinds: dict[str, str] | None = None) -> Stack:
    found = csv_stack(list(reports), kinds, rules)
    assert found is not None
    return found


def cells(found: Stack, name: str) -> list[object]:
    column = found.column(name)
    assert column is not None
    return list(column.to_pylist())


# --- one report, several -------------------------------------------------------------------


def test_one_report_reads_its_header_rows_and_columns() -> None:
    found = read(ONE)
    assert found.header == ["A", "B", "C"]
    assert (found.rows, found.counts) == (2, [2])
    assert cells(found, "A") == ["1", "2"]
    assert found.lines() == ["1,x,p", "2,y,q"]
    assert found.text() is found  # every column read as text already


def test_reports_with_one_header_line_are_read_as_one_table() -> None:
    found = read(ONE, TWO, HEADER, b"\xef\xbb\xbf" + TWO[:-1])  # a header-only one; a BOM
    assert found.counts == [2, 1, 0, 1]
    assert cells(found, "C") == ["p", "q", "r", "r"]
    assert found.lines() == ["1,x,p", "2,y,q", "3,x,r", "3,x,r"]
    assert found.which().tolist() == [0, 0, 1, 3]
    assert found.numbers().tolist() == [1, 2, 1, 1]
    assert list(found.row_numbers()) == [1, 2, 1, 1]
    revisions = found.per_report([10, 20, 30, 10])
    assert [revisions[2][code] for code in revisions[0].tolist()] == [10, 10, 20, 10]
    assert [report.header for report in found.reports] == [["A", "B", "C"]] * 4


def test_kinds_convert_the_named_columns_and_skip_the_others() -> None:
    kinds = {"A": NUMBER, "B": LABEL, "C": TEXT, "D": NUMBER}  # no D: skipped
    found = read(ONE, TWO, kinds=kinds)
    a, b = found.column("A"), found.column("B")
    assert a is not None
    assert b is not None
    assert a.type == pa.float64()
    assert a.to_pylist() == [1.0, 2.0, 3.0]
    assert pa.types.is_dictionary(b.type)
    assert b.to_pylist() == ["x", "y", "x"]
    assert found.has("A", "B", "C")
    assert not found.has("D")
    assert found.column("D") is None
    only_b = read(ONE, kinds={"B": TEXT})
    assert only_b.column("A") is None
    assert only_b.text().column("A") is not None  # read again, every column as text
    assert cells(only_b.text(), "A") == ["1", "2"]


def test_a_cell_that_is_no_number_declines_a_number_column() -> None:
    assert csv_stack([ONE, HEADER + b"x,x,x\n"], {"A": NUMBER}) is None
    assert csv_stack([HEADER + b",x,x\n"], {"A": NUMBER}) is None  # an empty cell too


def test_other_header_lines_start_tables_of_their_own_or_decline() -> None:
    other = b"C,A\nz,9\n"
    assert csv_stack([ONE, other]) is None  # one_header
    found = read(ONE, other, TWO, rules=LF_ONLY)
    assert found.counts == [2, 1, 1]
    assert [report.header for report in found.reports] == [
        ["A", "B", "C"],
        ["C", "A"],
        ["A", "B", "C"],
    ]
    assert cells(found, "A") == ["1", "2", "9", "3"]
    assert found.column("B") is None  # the second table has no B
    assert not found.has("B")
    assert found.lines() == ["1,x,p", "2,y,q", "z,9", "3,x,r"]
    crlf = HEADER.replace(b"\n", b"\r\n") + b"4,w,s\r\n"  # another header line: its end too
    assert csv_stack([ONE, crlf]) is None
    assert read(ONE, crlf, rules=LF_ONLY).counts == [2, 1]


# --- the line rules ---------------------------------------------------------------------------


def test_a_lone_cr_ends_a_line_or_declines_the_report() -> None:
    data = HEADER + b"1,x,p\r2,y,q\n"
    found = read(data)
    assert (found.rows, found.lines()) == (2, ["1,x,p", "2,y,q"])
    assert csv_stack([data], None, LF_ONLY) is None
    assert csv_stack([HEADER + b"1,x,p\n2,y,q\r"], None, LF_ONLY) is None  # at the end too
    assert csv_stack([b"X\rA,B\n1,2\n"]) is None  # inside the header line: whatever the rules
    found = read(b"A,B\r\r\n1,2\n")  # ending it (then a blank line)
    assert (found.header, found.lines()) == (["A", "B"], ["1,2"])


def test_lone_crs_in_a_stack_are_counted_as_line_ends() -> None:
    found = read(HEADER + b"1,x,p\r2,y,q\r", TWO)
    assert found.counts == [2, 1]
    assert found.lines() == ["1,x,p", "2,y,q", "3,x,r"]


def test_blank_lines_are_skipped_or_decline_the_report() -> None:
    data = HEADER + b"\n1,x,p\r\n\r\n2,y,q\n\n"
    found = read(data)
    assert (found.rows, found.counts, found.lines()) == (2, [2], ["1,x,p", "2,y,q"])
    assert csv_stack([data], None, LF_ONLY) is None
    for blank in (b"\n", b"\r\n"):
        assert csv_stack([ONE + blank], None, LF_ONLY) is None  # trailing
        assert csv_stack([HEADER + blank + b"1,x,p\n"], None, LF_ONLY) is None  # first
    # every column with an empty cell somewhere: the blank line is looked for in the bytes
    empty = HEADER + b",,\n1,x,p\n"
    for kinds in (None, {"B": LABEL}, {"A": TEXT, "B": LABEL}):
        assert read(empty, rules=LF_ONLY, kinds=kinds).rows == 2
        assert csv_stack([empty + b"\n2,y,q\n"], kinds, LF_ONLY) is None
    assert csv_stack([ONE + b"\n"], {"A": NUMBER}, LF_ONLY) is None  # "" is no number
    assert csv_stack([b"A\n1\n\n2\n"], None, LF_ONLY) is None  # one column
    assert read(b"A\n1\n\n2\n").lines() == ["1", "2"]


def test_a_blank_line_declines_a_stack_whatever_the_rules() -> None:
    for blank in (b"\n", b"\r\n"):
        assert csv_stack([ONE + blank, TWO]) is None
        assert csv_stack([ONE, HEADER + blank + b"3,x,r\n"]) is None
    assert csv_stack([b"A\n1\n\n", b"A\n2\n"]) is None  # one column


def test_splitlines_breaks_and_nul_decline_or_are_cells() -> None:
    for byte in ("\x00", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"):
        data = HEADER + f"1,x{byte},p\n".encode()
        assert csv_stack([data]) is None, repr(byte)
        assert cells(read(data, rules=LF_ONLY), "B") == [f"x{byte}"]


def test_line_ends_may_mix_within_a_stacked_report_unless_the_rules_want_them_alike() -> None:
    mixed = HEADER + b"1,x,p\r\n2,y,q\n"
    assert read(mixed, TWO).counts == [2, 1]
    assert csv_stack([mixed, TWO], None, ALIKE) is None
    assert read(mixed, rules=ALIKE).rows == 2  # a report read alone is not held to it
    crlf = ONE.replace(b"\n", b"\r\n")
    assert read(crlf, crlf, rules=ALIKE).counts == [2, 2]
    assert read(crlf[:-1], crlf, rules=ALIKE).counts == [2, 2]  # "...\r": then CRLF
    assert csv_stack([crlf[:-2], crlf], None, ALIKE) is None  # unended: LF, among CRLFs
    assert read(ONE[:-1], ONE, rules=ALIKE).counts == [2, 2]


def test_header_names_must_be_distinct_and_not_blank_unless_the_rules_allow() -> None:
    assert csv_stack([b"A,A\n1,2\n"]) is None
    assert csv_stack([b"A, A \n1,2\n"]) is None  # names are stripped
    assert csv_stack([b"A,,C\n1,2,3\n"]) is None
    found = read(b"A,,C\n1,2,3\n", rules=LF_ONLY)
    assert cells(found, "") == ["2"]
    assert csv_stack([b"\r\n1\n"], None, LF_ONLY) is None  # a header that is a blank line


def test_threads_read_a_large_table_alike() -> None:
    data = HEADER + b"".join(b"%d,x%d,p\n" % (i, i % 7) for i in range(300_000))
    assert len(data) > 2 << 20
    one = read(data, rules=CsvRules(threads=False), kinds={"A": NUMBER, "B": LABEL})
    many = read(data, kinds={"A": NUMBER, "B": LABEL})
    for name in ("A", "B"):
        assert cells(one, name) == cells(many, name)


# --- irregular stacks -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "reports"),
    [
        ("no reports", []),
        ("no line break", [b"A,B,C"]),
        ("only a byte order mark", [b"\xef\xbb\xbf"]),
        ("a blank first line", [b"\nA,B,C\n1,2,3\n"]),
        ("no rows at all", [HEADER, HEADER]),
        ("a short row in the second report", [ONE, HEADER + b"3,x\n"]),
        ("a long row in the second report", [ONE, HEADER + b"3,x,r,s\n"]),
        ("a quote", [ONE, HEADER + b'3,"x",r\n']),
        ("not UTF-8", [ONE, HEADER + b"3,\xe9,r\n"]),
        ("not UTF-8 in the header", [b"A,\xe9\n1,2\n"]),
    ],
)
def test_irregular_stacks_are_declined(case: str, reports: list[bytes]) -> None:
    assert csv_stack(reports) is None, case
    assert csv_stack(reports, None, LF_ONLY) is None, case


def test_the_row_path_switch_declines_every_stack() -> None:
    with row_path_only():
        assert csv_stack([ONE]) is None
        assert csv_frame(ONE) is None
    assert csv_stack([ONE]) is not None


def test_a_frame_is_one_report_with_its_native_fields() -> None:
    frame = csv_frame(ONE, {"A": NUMBER})
    assert frame is not None
    assert (frame.header, frame.rows) == (["A", "B", "C"], 2)
    assert frame.column("B") is None  # not among the kinds
    assert dict(frame.natives()(1)) == {"A": "2", "B": "y", "C": "q"}
    assert frame.texts("C") == ["p", "q"]
    with pytest.raises(KeyError):
        frame.texts("D")


# --- against the row paths --------------------------------------------------------------------

CELLS = ["1", "x", "", " y ", "\u00e9", "a\x0bb", "a\x00", "\u2028"]
ENDS = ["\n", "\r\n", "\r"]
HEADERS = ["A,B", "A,B,C", "A", "A,A", "A,,B", " A ,B"]
KINDS = ["blank", "width", "cell"]  # a blank line, a row of another width, an odd cell


@st.composite
def report(draw: st.DrawFn, header: str, end: str) -> bytes:
    """A report under `header`: mostly regular rows, now and then a blank line, a row of
    another width or an odd cell; its lines ended with `end`, or now and then each its own."""
    # (the usual case first: it is what Hypothesis draws most and shrinks to)
    ends = st.sampled_from([end] * 5 + ENDS) if draw(st.sampled_from([0] * 5 + [1])) else None
    width = header.count(",") + 1
    text = header + end
    for n, kind in enumerate(
        draw(st.lists(st.sampled_from(["row"] * 30 + KINDS), min_size=1, max_size=5))
    ):
        text += "" if n == 0 else end if ends is None else draw(ends)
        if kind == "blank":
            continue
        size = draw(st.integers(1, 4)) if kind == "width" else width
        pool = CELLS if kind == "cell" else CELLS[:2]
        text += ",".join(draw(st.sampled_from(pool)) for _ in range(size))
    text += draw(st.sampled_from([end] * 6 + ["", "\n\n", "\r\n\r\n"]))
    data = text.encode()
    return (b"\xef\xbb\xbf" + data) if draw(st.sampled_from([0] * 4 + [1])) else data


@st.composite
def stacks(draw: st.DrawFn) -> list[bytes]:
    """One to four reports, mostly under one header line."""
    header = draw(st.sampled_from(HEADERS))
    end = draw(st.sampled_from(["\n", "\n", "\r\n", "\r"]))
    headers, ends = st.sampled_from([header] * 9 + HEADERS), st.sampled_from([end] * 9 + ENDS)
    return [draw(report(draw(headers), draw(ends))) for _ in range(draw(st.integers(1, 4)))]


def row_path(data: bytes, rules: CsvRules) -> tuple[list[str], list[list[str]]] | None:
    """(header, rows) as the row path of the rules reads the report; None where it rejects it."""
    try:
        return read_csv(data, "r") if rules.lone_cr else csv_rows(data, "r")
    except (ParseError, csv.Error):
        return None


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stacks(), st.sampled_from(["default", "alike", "lf"]))
def test_where_the_reader_answers_it_reads_what_the_row_path_reads(
    reports: list[bytes], which: str
) -> None:
    rules = {"default": CsvRules(), "alike": ALIKE, "lf": LF_ONLY}[which]
    found = csv_stack(reports, None, rules)
    if found is None:
        return
    lines = found.lines()
    assert len(lines) == found.rows == sum(found.counts)
    start = 0
    for data, own in zip(reports, found.reports, strict=True):
        expected = row_path(data, rules)
        assert expected is not None
        assert own.header == expected[0]
        rows = [line.split(",") for line in lines[start : start + own.rows]]
        assert rows == expected[1]
        start += own.rows
    if all(own.header == found.header for own in found.reports):  # one table: its columns too
        columns = [cells(found, name) for name in found.header]
        assert [list(row) for row in zip(*columns, strict=True)] == [
            line.split(",") for line in lines
        ]
