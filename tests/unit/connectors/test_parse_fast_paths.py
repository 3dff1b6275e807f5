"""The fast paths of the parsers read exactly what the plain ones read: CSV split at commas
against the csv module, lazy native-field mappings against the dicts they stand for, and the
garbage collector back on after every parse."""

from __future__ import annotations

import gc
import json

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from connectors.ercot.parse import parse_dam_spp, parse_fuel_mix
from connectors.ercot.timelabels import posted_utc
from connectors.errors import ParseError
from connectors.tabular import RowFields, _read_csv_module, header_index, read_csv
from tests.unit.connectors.cases_ercot import DAM_FIRST, FUEL_MIX_SMALL

# --- read_csv: split directly where the csv module would read plain fields ---------------------


def outcome(read: object, data: bytes) -> object:
    try:
        return read(data, "f.csv")  # type: ignore[operator]
    except ParseError as exc:
        return ("error", str(exc))


def by_csv_module(data: bytes, source: str) -> tuple[list[str], list[list[str]]]:
    return _read_csv_module(data.decode("utf-8-sig"), source)


# the characters that decide how a CSV is read: separators, every kind of line break, quotes;
# and plain ones, which the split reads
TEXT = st.text(alphabet=st.sampled_from('ab 1,,,\n\n\r"\x00\x85\u2028\x0b'), max_size=60) | st.text(
    alphabet=st.sampled_from("ab1 ,,\n\r"), max_size=60
)


@settings(max_examples=2000, deadline=None)
@given(TEXT)
@example("a,b\r\n1,2\r\n")
@example("a,b\n1,2\n\n3,4\n")  # a blank line inside is no row
@example("a\n\n1\n")  # ... not even in a one-column table
@example("\na,b\n1,2\n")  # a blank first line is the (empty) header
@example("a,b\r1,2\r")  # lone CR ends a line for both
@example('a,b\n"1,5",2\n')  # quotes: the csv module
@example("a,b\n1,2,3\n")  # wrong width: the csv module names the row
@example("a,b\n1\x852\n")  # NEL is no line break to the csv module
def test_read_csv_reads_what_the_csv_module_reads(text: str) -> None:
    data = text.encode()
    assert outcome(read_csv, data) == outcome(by_csv_module, data)


def test_a_field_over_the_csv_size_limit_is_left_to_the_csv_module() -> None:
    data = b"a,b\n" + b"x" * 200_000 + b",1\n"
    assert outcome(read_csv, data) == outcome(by_csv_module, data)
    assert outcome(read_csv, data)[0] == "error"  # type: ignore[index]


def test_a_short_row_still_names_its_row_after_a_blank_line() -> None:
    with pytest.raises(ParseError, match=r"^f\.csv, row 3: 1 fields where the header has 2"):
        read_csv(b"a,b\n1,2\n\n3\n", "f.csv")


# --- RowFields: a row by column name, as dict(zip(header, row)) would give it -----------------


@pytest.mark.parametrize(
    ("header", "row"),
    [
        (["a", "b", "c"], ["1", "2", "3"]),
        (["a", "b", "a"], ["1", "2", "3"]),  # a repeated name keeps its last value, first place
        ([], []),
    ],
)
def test_row_fields_are_the_row_as_a_dict(header: list[str], row: list[str]) -> None:
    fields = RowFields(header_index(header), row)
    expected = dict(zip(header, row, strict=True))
    assert fields == expected
    assert expected == fields
    assert list(fields.items()) == list(expected.items())
    assert len(fields) == len(expected)
    assert repr(fields) == repr(expected)
    with pytest.raises(KeyError):
        fields["missing"]


def test_ercot_native_fields_are_the_source_row() -> None:
    record = parse_dam_spp(DAM_FIRST, "dam.csv")[0]
    header, row = (line.split(",") for line in DAM_FIRST.decode().splitlines()[:2])
    assert dict(record.native_fields) == dict(zip(header, row, strict=True))


def test_dashboard_native_fields_are_built_when_read() -> None:
    records = parse_fuel_mix(FUEL_MIX_SMALL, "fuel.json")
    body = json.loads(FUEL_MIX_SMALL)
    day, stamps = next(iter(body["data"].items()))
    stamp, fuels = next(iter(stamps.items()))
    fuel, cell = next(iter(fuels.items()))
    expected = {"day": day, "timestamp": stamp, "fuel": fuel} | {k: str(v) for k, v in cell.items()}
    native = records[0].native_fields
    assert native == expected
    assert list(native) == list(expected)
    assert len(native) == len(expected)
    assert repr(native) == repr(expected)


def test_a_dashboard_cell_key_replaces_a_named_field_in_place() -> None:
    body = {
        "lastUpdated": "2024-07-15 17:10:00-0500",
        "data": {
            "2024-07-15": {"2024-07-15 17:04:58-0500": {"Solar": {"gen": 5.0, "fuel": "sun"}}}
        },
    }
    native = parse_fuel_mix(json.dumps(body).encode(), "fuel.json")[0].native_fields
    assert list(native.items()) == [
        ("day", "2024-07-15"),
        ("timestamp", "2024-07-15 17:04:58-0500"),
        ("fuel", "sun"),
        ("gen", "5.0"),
    ]


# --- the collector, and the posting stamp -----------------------------------------------------


def test_the_collector_is_running_again_after_an_ercot_parse() -> None:
    assert gc.isenabled()
    parse_dam_spp(DAM_FIRST, "dam.csv")
    assert gc.isenabled()
    with pytest.raises(ParseError):
        parse_dam_spp(b"", "e.csv")
    assert gc.isenabled()


@pytest.mark.parametrize(
    "name",
    [
        "cdr.00012331.0000000000000000.20241301.133012.DAMSPNP4190.csv",  # month 13
        "cdr.00012331.0000000000000000.20240230.133012.DAMSPNP4190.csv",  # 30 February
        "cdr.00012331.0000000000000000.20240714.246012.DAMSPNP4190.csv",  # 24:60
    ],
)
def test_an_impossible_posting_stamp_is_named(name: str) -> None:
    with pytest.raises(ValueError, match="is not a date and time"):
        posted_utc(name)
