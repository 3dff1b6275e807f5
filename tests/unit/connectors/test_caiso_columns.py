"""CAISO's columnar path (connectors/caiso/columns.py) reads what the row path reads.

Regular simulated OASIS reports and Outlook files are altered in the ways the columnar path
must notice (line endings, BOM, quotes, padding, repeats, missing components, odd numbers and
labels, clock changes...): each altered payload must parse alike with the columnar readers on
and off (records, native fields, or the error), and the alterations the columnar path is meant
to take in its stride must still be read by it.
"""

from __future__ import annotations

import io
import random
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.caiso.simulate import simulate
from connectors.columnar import RecordBatch
from connectors.parsing import parser_for
from connectors.simulate import SimRequest
from schemas.catalog import Dataset, Iso
from tests.unit.connectors.cases_caiso import OUTLOOK_DEMAND_DAILY, outlook_demand_dst
from tests.unit.connectors.test_columnar import both_paths

DAY = datetime(2024, 6, 3, 7, tzinfo=UTC)  # midnight Pacific (PDT)

Alter = Callable[[str], str]


def _lines(alter: Callable[[list[str]], list[str]]) -> Alter:
    def run(text: str) -> str:
        lines = text.split("\n")
        trailing = lines[-1] == ""
        body = alter(lines[:-1] if trailing else lines)
        return "\n".join(body) + ("\n" if trailing else "")

    return run


def _cell(row: int, column: str, value: str) -> Alter:
    """The cell of data row `row` (1-based) in `column` set to `value`."""

    def alter(lines: list[str]) -> list[str]:
        index = lines[0].split(",").index(column)
        cells = lines[row].split(",")
        cells[index] = value
        return [*lines[:row], ",".join(cells), *lines[row + 1 :]]

    return _lines(alter)


def _drop_rows(keep: Callable[[int, list[str], list[str]], bool]) -> Alter:
    def alter(lines: list[str]) -> list[str]:
        header = lines[0].split(",")
        return [lines[0]] + [
            line for n, line in enumerate(lines[1:], 1) if keep(n, header, line.split(","))
        ]

    return _lines(alter)


def _component(row: list[str], header: list[str]) -> str:
    return row[header.index("LMP_TYPE")]


# Alterations of an OASIS CSV report the columnar path reads (they change nothing it answers).
READ_ALIKE: dict[str, Alter] = {
    "crlf": lambda text: text.replace("\n", "\r\n"),
    "bom": lambda text: "\ufeff" + text,
    "no-final-newline": lambda text: text.rstrip("\n"),
    "header-padded": _lines(lambda lines: [lines[0].replace(",", " , "), *lines[1:]]),
    "z-times": lambda text: text.replace("-00:00", "Z", 7),  # a few rows, same instants
    "utf8-cell": lambda text: text.replace(",1,", ",1\u00e9,", 1),
}


def _swap_first_columns(lines: list[str]) -> list[str]:
    out = []
    for line in lines:
        first, second, rest = line.split(",", 2)
        out.append(",".join([second, first, rest]))
    return out


READ_ALIKE["columns-reordered"] = _lines(_swap_first_columns)  # other members keep the order

# Alterations either path may read: they must only read alike.
EITHER: dict[str, Alter] = {
    "nul": lambda text: text.replace(",1,", ",1\x00,", 1),
    "tab-in-cell": lambda text: text.replace(",1,", ",1\t,", 1),
    "space-in-cell": lambda text: text.replace(",1,", ", 1 ,", 1),
}

# Alterations the row path reads or rejects in its own way: the columnar path must decline
# (or, where it still reads the payload, answer the same).
DECLINED: dict[str, Alter] = {
    "quoted-cell": lambda text: text.replace(",1,", ',"1",', 1),
    "lone-cr": lambda text: text.replace(",1,", ",1\r,", 1),
    "empty-line-inside": _lines(lambda lines: [*lines[:3], "", *lines[3:]]),
    "empty-lines-at-end": lambda text: text + "\n\n",
    "crlf-empty-line-at-end": lambda text: text.replace("\n", "\r\n") + "\r\n",
    "short-row": _lines(lambda lines: [*lines[:2], lines[2].rsplit(",", 1)[0], *lines[3:]]),
    "long-row": _lines(lambda lines: [*lines[:2], lines[2] + ",x", *lines[3:]]),
    "repeated-header-name": _lines(
        lambda lines: [lines[0].rsplit(",", 1)[0] + ",OPR_DT", *lines[1:]]
    ),
    "verbatim-repeat": _lines(lambda lines: [*lines[:3], lines[2], *lines[3:]]),
    "conflicting-repeat": _lines(
        lambda lines: [*lines[:3], lines[2].rsplit(",", 3)[0] + ",9.99,1,1", *lines[3:]]
    ),
    "header-only": _lines(lambda lines: lines[:1]),
    "invalid-utf8": lambda text: text.replace(",1,", ",1\udcff,", 1),
}

VALUE_CELLS = ["", " 5", "5 ", "1_000", "nan", "inf", "-inf", "1e999", "0x10", "1.5e3", "+.5", "-0"]


def _with_member(data: bytes, alter: Alter) -> bytes:
    """The zip with its first member's text altered (kept as bytes where it cannot be text)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w") as target:
        for n, info in enumerate(source.infolist()):
            body = source.read(info)
            if n == 0:
                body = alter(body.decode()).encode("utf-8", "surrogateescape")
            target.writestr(info, body)
    return out.getvalue()


def _payload(dataset: Dataset, hours: int = 30, locations: int = 2) -> tuple[str, bytes]:
    """A response of two reports (operating days): alterations touch the first."""
    request = SimRequest(dataset, DAY, DAY + timedelta(hours=hours), locations=locations)
    return simulate(request)[0]


OASIS = [Dataset.LMP_DA_HOURLY, Dataset.LMP_RT_15MIN, Dataset.LMP_RT_5MIN, Dataset.AS_PRICES]
OASIS += [Dataset.LOAD]


def _same(dataset: Dataset, name: str, data: bytes) -> bool:
    fast, slow, answered = both_paths(Iso.CAISO, dataset, data, name)
    assert fast == slow
    return answered


@pytest.mark.parametrize("dataset", OASIS, ids=lambda d: d.value)
@pytest.mark.parametrize("alteration", sorted(READ_ALIKE))
def test_alterations_the_columnar_path_reads(dataset: Dataset, alteration: str) -> None:
    name, data = _payload(dataset)
    assert _same(dataset, name, _with_member(data, READ_ALIKE[alteration]))


@pytest.mark.parametrize("dataset", OASIS, ids=lambda d: d.value)
@pytest.mark.parametrize("alteration", sorted(DECLINED))
def test_alterations_left_to_the_row_path(dataset: Dataset, alteration: str) -> None:
    name, data = _payload(dataset)
    assert not _same(dataset, name, _with_member(data, DECLINED[alteration]))


@pytest.mark.parametrize("dataset", OASIS, ids=lambda d: d.value)
@pytest.mark.parametrize("alteration", sorted(EITHER))
def test_alterations_read_alike(dataset: Dataset, alteration: str) -> None:
    name, data = _payload(dataset)
    _same(dataset, name, _with_member(data, EITHER[alteration]))


VALUE_COLUMN = {
    Dataset.LMP_DA_HOURLY: "MW",
    Dataset.LMP_RT_15MIN: "PRC",
    Dataset.LMP_RT_5MIN: "VALUE",
    Dataset.AS_PRICES: "MW",
    Dataset.LOAD: "MW",
}


@pytest.mark.parametrize("dataset", OASIS, ids=lambda d: d.value)
@pytest.mark.parametrize("cell", VALUE_CELLS)
def test_value_cells_read_alike(dataset: Dataset, cell: str) -> None:
    name, data = _payload(dataset)
    for row in (1, 2, 7):
        _same(dataset, name, _with_member(data, _cell(row, VALUE_COLUMN[dataset], cell)))


CELLS = {
    "INTERVALSTARTTIME_GMT": ["2024-06-03T07:00:00", "2024-06-03T07:00:00+00:00", "x", ""],
    "INTERVALENDTIME_GMT": ["2024-06-03T07:00:30-00:00", "2024-06-03T06:00:00-00:00"],
    "MARKET_RUN_ID": ["RTM", "DAM", "HASP", ""],
    "NODE_ID": ["", " TH_NP15_GEN-APND", "ANOTHER"],
    "NODE": [""],
    "LMP_TYPE": ["MCE", "LMP", "XYZ", ""],
    "ANC_TYPE": ["RD", "XX"],
    "XML_DATA_ITEM": ["RD_CLR_PRC", "SYS_FCST_DA_MW", "NOPE"],
    "TAC_AREA_NAME": ["", "PGE-TAC"],
    "OPR_DT": ["not a day", "2024-06-02"],
}


_SHARED = [
    "INTERVALSTARTTIME_GMT",
    "INTERVALENDTIME_GMT",
    "MARKET_RUN_ID",
    "XML_DATA_ITEM",
    "OPR_DT",
]
COLUMNS = {
    Dataset.LMP_DA_HOURLY: [*_SHARED, "NODE_ID", "NODE", "LMP_TYPE"],
    Dataset.LMP_RT_15MIN: [*_SHARED, "NODE_ID", "NODE", "LMP_TYPE"],
    Dataset.LMP_RT_5MIN: [*_SHARED, "NODE_ID", "NODE", "LMP_TYPE"],
    Dataset.AS_PRICES: [*_SHARED, "ANC_TYPE"],
    Dataset.LOAD: [*_SHARED, "TAC_AREA_NAME"],
}


@pytest.mark.parametrize(
    ("dataset", "column", "cell"),
    [(d, c, v) for d, columns in COLUMNS.items() for c in columns for v in CELLS[c]],
    ids=str,
)
def test_label_cells_read_alike(dataset: Dataset, column: str, cell: str) -> None:
    name, data = _payload(dataset)
    for row in (1, 4):
        _same(dataset, name, _with_member(data, _cell(row, column, cell)))


LMP = [Dataset.LMP_DA_HOURLY, Dataset.LMP_RT_15MIN, Dataset.LMP_RT_5MIN]


@pytest.mark.parametrize("dataset", LMP, ids=lambda d: d.value)
@pytest.mark.parametrize(
    ("dropped", "read"),
    [
        ({"MGHG"}, True),  # no ghg: natives without LMP_GHG_PRC
        ({"MCE", "MCC", "MCL"}, True),  # LMP rows with ghg only
        ({"MCE", "MCC", "MCL", "MGHG"}, True),  # LMP rows alone
        ({"MCC"}, False),  # some components but not all: rejected
        ({"LMP"}, False),  # components without an LMP row: rejected
    ],
    ids=str,
)
def test_lmp_components_present_or_absent(dataset: Dataset, dropped: set[str], read: bool) -> None:
    name, data = _payload(dataset)
    altered = _with_member(data, _drop_rows(lambda n, h, row: _component(row, h) not in dropped))
    assert _same(dataset, name, altered) == read


@pytest.mark.parametrize("dataset", LMP, ids=lambda d: d.value)
def test_lmp_records_follow_the_first_row_of_each_node_and_interval(dataset: Dataset) -> None:
    """Rows shuffled across nodes and intervals (an MCC row before its LMP row, too): records
    come in the order their first rows come, as the row path's dict keeps them."""
    name, data = _payload(dataset)

    def shuffle(lines: list[str]) -> list[str]:
        rows = lines[1:]
        random.Random(7).shuffle(rows)
        return [lines[0], *rows]

    assert _same(dataset, name, _with_member(data, _lines(shuffle)))


@pytest.mark.parametrize("dataset", LMP, ids=lambda d: d.value)
def test_lmp_one_member_per_component(dataset: Dataset) -> None:
    """grp_type=ALL answers: a member per component, pivoted together across members."""
    name, data = _payload(dataset)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        member = archive.namelist()[0]
        lines = archive.read(member).decode().split("\n")
    header = lines[0].split(",")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for component in ("MCC", "LMP", "MGHG", "MCE", "MCL"):
            body = [
                line
                for line in lines[1:]
                if line and _component(line.split(","), header) == component
            ]
            archive.writestr(f"{component}_{member}", "\n".join([lines[0], *body]) + "\n")
    assert _same(dataset, name, out.getvalue())


# --- Outlook demand ---------------------------------------------------------------------------

OUTLOOK_NAME = "caiso_outlook_20240603_demand.csv"


def _outlook(
    rows: list[str], header: str = "Time,Day ahead forecast,Current demand,Other"
) -> bytes:
    return ("\n".join([header, *rows]) + "\n").encode()


DATED = [f"06/03/2024 {h:02d}:{m:02d},{21000 + h},{20000 + m},7" for h in range(3) for m in (0, 5)]
CLOCK = [f"{h:02d}:{m:02d},{21000 + h},{20000 + m},7" for h in (22, 23) for m in (50, 55)] + [
    "00:00,1,2,3"
]

OUTLOOK_READ: dict[str, bytes] = {
    "dated": _outlook(DATED),
    "clock-with-next-midnight": _outlook(CLOCK),
    "daily-fixture": OUTLOOK_DEMAND_DAILY,
    "blank-demand": _outlook([*DATED[:2], "06/03/2024 00:10,21000,,7", *DATED[3:]]),
    "blank-row": _outlook([*DATED[:2], "06/03/2024 00:10,,,", *DATED[3:]]),
    "demand-column": _outlook(DATED, "Time,Day ahead forecast,Demand,Other"),
    "crlf": _outlook(DATED).replace(b"\n", b"\r\n"),
    "midnight-24": _outlook([*DATED[:2], "06/03/2024 24:00,1,2,7"]),
    "repeated-blank-row": _outlook([*DATED, "06/03/2024 02:05,,,", "06/03/2024 02:05,,,"]),
}

OUTLOOK_DECLINED: dict[str, bytes] = {
    "dst-day": outlook_demand_dst(),
    "padded-cell": _outlook([*DATED[:2], "06/03/2024 00:10, 21000,2,7", *DATED[3:]]),
    "space-cell": _outlook([*DATED[:2], "06/03/2024 00:10, , ,", *DATED[3:]]),
    "tab-cell": _outlook([*DATED[:2], "06/03/2024 00:10,\t,\t,", *DATED[3:]]),
    "one-digit-hour": _outlook([*DATED[:2], "06/03/2024 0:10,1,2,7", *DATED[3:]]),
    "padded-label": _outlook([*DATED[:2], " 06/03/2024 00:10,1,2,7", *DATED[3:]]),
    "off-grid": _outlook([*DATED[:2], "06/03/2024 00:11,1,2,7", *DATED[3:]]),
    "not-a-day": _outlook([*DATED[:2], "06/33/2024 00:10,1,2,7", *DATED[3:]]),
    "out-of-order": _outlook([DATED[1], DATED[0], *DATED[2:]]),
    "repeated-row": _outlook([DATED[0], DATED[0], *DATED[1:]]),
    "mixed-labels": _outlook([*DATED[:2], "00:10,1,2,7"]),
    "empty-label": _outlook([*DATED[:2], ",1,2,7"]),
    "both-demand-columns": _outlook(DATED, "Time,Demand,Current demand,Other"),
    "not-a-number": _outlook([*DATED[:2], "06/03/2024 00:10,1,x,7"]),
    "first-column-not-time": _outlook(DATED, "When,Day ahead forecast,Current demand,Other"),
    "quoted": _outlook([*DATED[:2], '06/03/2024 00:10,1,"2",7']),
    "non-ascii": _outlook([*DATED[:2], "06/03/2024 00:10,1,2,\u00e9"]),
}


@pytest.mark.parametrize("case", sorted(OUTLOOK_READ))
def test_outlook_demand_files_the_columnar_path_reads(case: str) -> None:
    assert _same(Dataset.LOAD, OUTLOOK_NAME, OUTLOOK_READ[case])


@pytest.mark.parametrize("case", sorted(OUTLOOK_DECLINED))
def test_outlook_demand_files_left_to_the_row_path(case: str) -> None:
    assert not _same(Dataset.LOAD, OUTLOOK_NAME, OUTLOOK_DECLINED[case])


def test_outlook_demand_without_a_day_in_the_name_is_left_to_the_row_path() -> None:
    assert not _same(Dataset.LOAD, "demand.csv", _outlook(CLOCK))
    assert _same(Dataset.LOAD, "demand.csv", _outlook(DATED))


CELL = st.sampled_from(["", "0", "12", "-3.5", "1e3", " ", "x", "7 ", "\t", "nan"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.integers(0, 30),  # minutes after 00:00 in 5-minute steps, with repeats
            st.sampled_from([0, 1, 2]),  # which day after the first
            CELL,
            CELL,
            CELL,
        ),
        min_size=1,
        max_size=12,
    ),
    st.booleans(),
)
def test_outlook_demand_files_read_alike(
    rows: list[tuple[int, int, str, str, str]], dated: bool
) -> None:
    lines = []
    for step, day, *cells in rows:
        minute = step * 5 if step < 30 else 1440 - 5 * (step - 29)
        clock = f"{minute // 60:02d}:{minute % 60:02d}"
        label = f"06/{3 + day:02d}/2024 {clock}" if dated else clock
        lines.append(",".join([label, *cells]))
    data = _outlook(lines)
    fast, slow, _ = both_paths(Iso.CAISO, Dataset.LOAD, data, OUTLOOK_NAME)
    assert fast == slow


def test_regular_payloads_are_record_batches() -> None:
    for dataset in OASIS:
        name, data = _payload(dataset)
        assert isinstance(parser_for(Iso.CAISO, dataset)(data, name), RecordBatch)
