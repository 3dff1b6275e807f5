"""The ERCOT columnar path (connectors/ercot/columns.py) on payloads the contract cases do not
spell out: documents stacked from a bulk archive, labels spelled two ways, padded cells, and
whatever must send a payload to the row loop. Either way the outcome must be the row path's."""

from __future__ import annotations

import csv

import pytest

from connectors.columnar import RecordBatch, row_path_only
from connectors.ercot.parse import parse_dam_spp, parse_sced_lmp
from connectors.errors import ConnectorError
from connectors.parsing import Parser
from schemas.catalog import Dataset, Iso
from tests.unit.connectors.cases_ercot import DAM_HEADER, SCED_HEADER, cdr, zipped
from tests.unit.connectors.test_columnar import both_paths

DAM = DAM_HEADER.encode() + b"\n"
SCED = SCED_HEADER.encode() + b"\n"


def dam_doc(stamp: str, body: bytes, header: bytes = DAM) -> tuple[str, bytes]:
    return cdr(12331, stamp, "DAMSPNP4190"), header + body


def sced_doc(stamp: str, body: bytes) -> tuple[str, bytes]:
    return cdr(12300, stamp, "LMPSROSNODENP6788"), SCED + body


def bulk(*documents: tuple[str, bytes]) -> bytes:
    """A bulk archive: a zip of zips, one document each (numbered, so names never repeat)."""
    return zipped(
        *(
            (f"{i}.{name.replace('.csv', '_csv.zip')}", zipped((name, data)))
            for i, (name, data) in enumerate(documents)
        )
    )


DAY_ONE = b"07/15/2024,17:00,HB_NORTH, 48.20,N\n07/15/2024,18:00,HB_NORTH, 50.10,N\n"
DAY_TWO = b"07/16/2024,17:00,HB_NORTH,47.95,N\n07/16/2024,17:00,LZ_WEST,-3.5,N\n"

# Payloads the columnar path reads: (name, dataset, payload).
ANSWERED = [
    (
        "bulk-of-two-days",
        Dataset.LMP_DA_HOURLY,
        bulk(dam_doc("20240714.133012", DAY_ONE), dam_doc("20240715.133012", DAY_TWO)),
    ),
    (
        "bulk-same-rows-reposted",
        Dataset.LMP_DA_HOURLY,  # a later posting is another revision
        bulk(dam_doc("20240714.133012", DAY_ONE), dam_doc("20240716.091500", DAY_ONE)),
    ),
    (
        "bulk-without-final-newline",
        Dataset.LMP_DA_HOURLY,
        bulk(dam_doc("20240714.133012", DAY_ONE[:-1]), dam_doc("20240715.133012", DAY_TWO)),
    ),
    (
        "bulk-crlf",
        Dataset.LMP_DA_HOURLY,
        bulk(
            dam_doc(
                "20240714.133012", DAY_ONE.replace(b"\n", b"\r\n"), DAM.replace(b"\n", b"\r\n")
            ),
            dam_doc(
                "20240715.133012", DAY_TWO.replace(b"\n", b"\r\n"), DAM.replace(b"\n", b"\r\n")
            ),
        ),
    ),
    (
        "bulk-with-byte-order-marks",
        Dataset.LMP_DA_HOURLY,
        bulk(
            dam_doc("20240714.133012", DAY_ONE, b"\xef\xbb\xbf" + DAM),
            dam_doc("20240715.133012", DAY_TWO, b"\xef\xbb\xbf" + DAM),
        ),
    ),
    (
        "bulk-with-a-header-only-document",
        Dataset.LMP_DA_HOURLY,
        bulk(
            dam_doc("20240714.133012", DAY_ONE),
            dam_doc("20240715.133012", b""),
            dam_doc("20240716.133012", DAY_TWO),
        ),
    ),
    (
        "hours-spelled-two-ways",
        Dataset.LMP_DA_HOURLY,  # "1:00" and "01:00" are one hour
        dam_doc(
            "20240714.133012",
            b"07/15/2024,01:00,HB_NORTH,20.00,N\n07/15/2024,1:00,HB_WEST,21.00,N\n"
            b"07/15/2024, 2:00 ,HB_NORTH,22.00, n\n",
        )[1],
    ),
    (
        "padded-point-names",
        Dataset.LMP_DA_HOURLY,  # " HB_NORTH" is HB_NORTH: its own hours
        dam_doc(
            "20240714.133012",
            b"07/15/2024,01:00, HB_NORTH,20.00,N\n07/15/2024,02:00,HB_NORTH ,21.00,N\n",
        )[1],
    ),
    (
        "no-dst-flag-column",
        Dataset.LMP_DA_HOURLY,  # hours counted: 1..25 on the fall-back day
        b"DeliveryDate,HourEnding,SettlementPoint,SettlementPointPrice\n"
        + b"".join(b"11/03/2024,%d,HB_NORTH,%d.5\n" % (h, h) for h in range(1, 26)),
    ),
    (
        "extra-columns",
        Dataset.LMP_DA_HOURLY,
        b"DeliveryDate,HourEnding,SettlementPoint,SettlementPointPrice,DSTFlag,Note\n"
        b"07/15/2024,17:00,HB_NORTH,48.20,N,x\n07/15/2024,17:00,HB_WEST,48.30,N,\n",
    ),
    (
        "exponent-and-sign",
        Dataset.LMP_DA_HOURLY,
        DAM + b"07/15/2024,17:00,HB_NORTH,+4.82e1,N\n07/15/2024,17:00,HB_WEST,-.5,N\n",
    ),
    (
        "sced-bulk-of-runs",
        Dataset.LMP_RT_5MIN,
        bulk(
            sced_doc(
                "20240715.174020",
                b"07/15/2024 17:40:18,N,HB_NORTH,       41.20\n"
                b"07/15/2024 17:40:18,N,LZ_CPS,       39.00\n",
            ),
            sced_doc("20240715.174305", b"07/15/2024 17:43:02,N,HB_NORTH,       44.75\n"),
            sced_doc("20240715.174520", b"07/15/2024 17:45:18,N,HB_NORTH,        1e3\n"),
        ),
    ),
    (
        "sced-repeated-hour",
        Dataset.LMP_RT_5MIN,
        SCED + b"11/03/2024 01:10:14,N,HB_NORTH,20.00\n11/03/2024 01:10:14,Y,HB_NORTH,21.00\n"
        b"11/03/2024 01:10:14, y ,HB_WEST,21.00\n",
    ),
    (
        "sced-one-run-in-two-documents",
        Dataset.LMP_RT_5MIN,  # rows split, no point twice
        bulk(
            sced_doc("20240715.174020", b"07/15/2024 17:40:18,N,HB_NORTH,41.20\n"),
            sced_doc("20240715.174021", b"07/15/2024 17:40:18,N,HB_WEST,41.30\n"),
        ),
    ),
]

# The rows of one document that send it to the row loop, under DAM's header or SCED's.
DAM_ROWS_DECLINED = {
    "one-hour-spelled-two-ways-twice": (  # the same hour twice
        b"07/15/2024,01:00,HB_NORTH,20.00,N\n07/15/2024,1:00,HB_NORTH,20.00,N\n"
    ),
    "padded-name-repeats-a-point": (
        b"07/15/2024,01:00,HB_NORTH,20.00,N\n07/15/2024,01:00, HB_NORTH,21.00,N\n"
    ),
    "tab-padded-price": b"07/15/2024,01:00,HB_NORTH,\t20.00,N\n",
    "empty-price": b"07/15/2024,01:00,HB_NORTH,,N\n",
    "infinite-price": b"07/15/2024,01:00,HB_NORTH,inf,N\n",
    "underscored-price": b"07/15/2024,01:00,HB_NORTH,1_000,N\n",
    "quoted-thousands": b'07/15/2024,01:00,HB_NORTH,"1,000.5",N\n',
    "empty-flag": b"07/15/2024,01:00,HB_NORTH,20.00,\n",
    "flag-on-an-unrepeated-hour": b"07/15/2024,01:00,HB_NORTH,20.00,Y\n",
    "skipped-spring-hour": b"03/10/2024,03:00,HB_NORTH,20.00,N\n",
    "not-a-date": b"2024-07-15,01:00,HB_NORTH,20.00,N\n",
    "cp1252": b"07/15/2024,01:00,HB_NORTH\xe9,20.00,N\n",
    "cell-beyond-the-csv-field-limit": (
        b"07/15/2024,01:00,HB_" + b"N" * (csv.field_size_limit() + 10) + b",20.00,N\n"
    ),
}
SCED_ROWS_DECLINED = {
    "sced-rerun-verbatim": (
        b"07/15/2024 17:40:18,N,HB_NORTH,41.20\n07/15/2024 17:40:18,N,HB_NORTH,41.20\n"
    ),
    "sced-same-run-two-spellings": (
        b"07/15/2024 17:40:18,N,HB_NORTH,41.20\n07/15/2024 17:40:18 ,N,HB_NORTH,41.25\n"
    ),
    "sced-flag-outside-the-repeated-hour": b"07/15/2024 17:40:18,Y,HB_NORTH,41.20\n",
    "sced-spring-gap": b"03/10/2024 02:10:00,N,HB_NORTH,41.20\n",
    "sced-not-a-stamp": b"07/15/2024 17:40,N,HB_NORTH,41.20\n",
}

# Payloads the columnar path leaves to the row loop, which reads or rejects them.
DECLINED = [
    (
        "bulk-headers-differ",
        Dataset.LMP_DA_HOURLY,
        bulk(
            dam_doc("20240714.133012", DAY_ONE),
            (
                "x.20240715.133012.DAMSPNP4190.csv",
                b"DeliveryDate,HourEnding,SettlementPointPrice,SettlementPoint,DSTFlag\n"
                b"07/16/2024,17:00,47.95,HB_NORTH,N\n",
            ),
        ),
    ),
    (
        "bulk-blank-line",
        Dataset.LMP_DA_HOURLY,  # blank lines are no rows: numbering holds
        bulk(dam_doc("20240714.133012", DAY_ONE + b"\n"), dam_doc("20240715.133012", DAY_TWO)),
    ),
    (
        "bulk-blank-line-inside",
        Dataset.LMP_DA_HOURLY,
        bulk(dam_doc("20240714.133012", b"\n" + DAY_ONE), dam_doc("20240715.133012", DAY_TWO)),
    ),
    (
        "bulk-carriage-returns-alone",
        Dataset.LMP_DA_HOURLY,
        bulk(
            dam_doc("20240714.133012", DAY_ONE.replace(b"\n", b"\r")),
            dam_doc("20240715.133012", DAY_TWO),
        ),
    ),
    (
        "bulk-mixed-line-ends",
        Dataset.LMP_DA_HOURLY,
        bulk(
            dam_doc(
                "20240714.133012", DAY_ONE.replace(b"\n", b"\r\n", 1), DAM.replace(b"\n", b"\r\n")
            ),
            dam_doc("20240715.133012", DAY_TWO),
        ),
    ),
    (
        "bulk-verbatim-repeat-across-documents",
        Dataset.LMP_DA_HOURLY,  # one posting, read once
        bulk(dam_doc("20240714.133012", DAY_ONE), dam_doc("20240714.133012", DAY_ONE)),
    ),
    (
        "bulk-conflict-across-documents",
        Dataset.LMP_DA_HOURLY,
        bulk(
            dam_doc("20240714.133012", DAY_ONE),
            dam_doc("20240714.133012", DAY_ONE.replace(b"48.20", b"48.21")),
        ),
    ),
    (
        "bulk-ragged-row",
        Dataset.LMP_DA_HOURLY,
        bulk(
            dam_doc("20240714.133012", DAY_ONE), dam_doc("20240715.133012", b"07/16/2024,17:00\n")
        ),
    ),
    (
        "missing-column",
        Dataset.LMP_DA_HOURLY,
        b"DeliveryDate,HourEnding,SettlementPoint\n07/15/2024,01:00,HB_NORTH\n",
    ),
    *((name, Dataset.LMP_DA_HOURLY, DAM + rows) for name, rows in DAM_ROWS_DECLINED.items()),
    *((name, Dataset.LMP_RT_5MIN, SCED + rows) for name, rows in SCED_ROWS_DECLINED.items()),
]


def _check(dataset: Dataset, data: bytes, *, answers: bool) -> None:
    name = cdr(12331, "20240714.133012", "DAMSPNP4190")
    fast, slow, answered = both_paths(Iso.ERCOT, dataset, data, name)
    assert fast == slow
    assert answered is answers


@pytest.mark.parametrize(("name", "dataset", "data"), ANSWERED, ids=[c[0] for c in ANSWERED])
def test_the_columnar_path_reads_these_as_the_row_path(
    name: str, dataset: Dataset, data: bytes
) -> None:
    _check(dataset, data, answers=True)


@pytest.mark.parametrize(("name", "dataset", "data"), DECLINED, ids=[c[0] for c in DECLINED])
def test_the_row_path_reads_or_rejects_these(name: str, dataset: Dataset, data: bytes) -> None:
    _check(dataset, data, answers=False)


@pytest.mark.parametrize("parse", [parse_dam_spp, parse_sced_lmp])
def test_a_document_error_in_a_bulk_archive_is_the_row_paths(parse: Parser) -> None:
    data = zipped(("a.zip", zipped(("a.csv", DAM + DAY_ONE))), ("b.zip", b"PK\x03\x04broken"))
    fast = _outcome(parse, data)
    with row_path_only():
        slow = _outcome(parse, data)
    assert fast == slow
    assert "not a readable zip" in fast


def _outcome(parse: Parser, data: bytes) -> str:
    try:
        parse(data, "bulk.zip")
    except ConnectorError as exc:
        return f"{type(exc).__name__}: {exc}"
    return "read"


def test_row_numbers_count_within_each_document() -> None:
    data = bulk(
        dam_doc("20240714.133012", DAY_ONE),
        dam_doc("20240715.133012", b""),
        dam_doc("20240716.133012", DAY_TWO),
    )
    records = parse_dam_spp(data, "bulk.zip")
    assert isinstance(records, RecordBatch)
    assert [r.source_row for r in records] == [1, 2, 1, 2]
    assert [r.native_fields["SettlementPointPrice"] for r in records] == [
        " 48.20",
        " 50.10",
        "47.95",
        "-3.5",
    ]
