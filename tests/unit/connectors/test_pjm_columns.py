"""PJM's columnar path (connectors/pjm/columns.py) reads what the row path reads.

Regular simulated Data Miner responses (CSV export and JSON page, every feed) are altered in
the ways the columnar path must notice (padding, empty and non-numeric cells, quotes, line
endings, blank lines, BOM, repeats, unknown codes, labels in other forms, bytes that are not
UTF-8...): each altered payload must parse alike with the columnar readers on and off (records,
native fields, or the error). The regular ones must be read by the columnar path.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.columnar import RecordBatch
from connectors.pjm import columns
from connectors.pjm.feeds import FEEDS
from connectors.pjm.parse import parse_lmp_rt_5min
from connectors.simulate import Faults
from schemas.catalog import Dataset, Iso
from tests.unit.connectors.test_columnar import both_paths, simulated

DAY = date(2024, 6, 3)
DATASETS = [Dataset.LMP_DA_HOURLY, Dataset.LMP_RT_5MIN, Dataset.LOAD, Dataset.AS_PRICES]


@pytest.fixture(autouse=True)
def columnar_at_any_size(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(columns, "SMALL_PAYLOAD_BYTES", 0)


def payloads(dataset: Dataset, fmt: str) -> list[tuple[str, bytes]]:
    out = []
    for name, data in simulated(Iso.PJM, dataset, DAY, Faults(negative_rate=0.1)):
        if (fmt == "csv") == (data[:1] not in (b"{", b"[")):
            out.append((name, data))
    assert out, f"no {fmt} payload simulated for {dataset.value}"
    return out


def test_every_feed_is_simulated_here() -> None:
    feeds = {feed.name for dataset in DATASETS for feed in FEEDS[dataset]}
    assert len(feeds) >= 6  # da, rt 5-min verified and unverified, metered, inst, reserves


# --- CSV exports: alterations of the text --------------------------------------------------

Alter = Callable[[list[str], random.Random], list[str]]


def _cell(lines: list[str], rng: random.Random, change: Callable[[str], str]) -> list[str]:
    """`change` applied to one random cell of one random data row."""
    row = rng.randrange(1, len(lines))
    cells = lines[row].split(",")
    column = rng.randrange(len(cells))
    cells[column] = change(cells[column])
    return [*lines[:row], ",".join(cells), *lines[row + 1 :]]


CSV_ALTERATIONS: dict[str, Alter] = {
    "space before a cell": lambda ls, r: _cell(ls, r, lambda c: " " + c),
    "space after a cell": lambda ls, r: _cell(ls, r, lambda c: c + " "),
    "empty cell": lambda ls, r: _cell(ls, r, lambda c: ""),
    "NaN": lambda ls, r: _cell(ls, r, lambda c: "NaN"),
    "inf": lambda ls, r: _cell(ls, r, lambda c: "inf"),
    "thousands separator": lambda ls, r: _cell(ls, r, lambda c: '"1,234.5"'),
    "quoted cell": lambda ls, r: _cell(ls, r, lambda c: f'"{c}"'),
    "plus sign": lambda ls, r: _cell(ls, r, lambda c: "+" + c),
    "underscore in a number": lambda ls, r: _cell(ls, r, lambda c: "1_000"),
    "exponent": lambda ls, r: _cell(ls, r, lambda c: "1e2"),
    "tab": lambda ls, r: _cell(ls, r, lambda c: c + "\t"),
    "non-ASCII text": lambda ls, r: _cell(ls, r, lambda c: c + "é"),
    "NUL": lambda ls, r: _cell(ls, r, lambda c: c + "\x00"),
    "vertical tab": lambda ls, r: _cell(ls, r, lambda c: c + "\x0b"),
    "line separator": lambda ls, r: _cell(ls, r, lambda c: c + "\u2028"),
    "NEL": lambda ls, r: _cell(ls, r, lambda c: c + "\x85"),
    "lowercase pm": lambda ls, r: _cell(ls, r, lambda c: c.replace("PM", "pm")),
    "zero-padded month": lambda ls, r: _cell(ls, r, lambda c: "0" + c if "/" in c else c),
    "short row": lambda ls, r: [*ls[:2], ls[2].rsplit(",", 1)[0], *ls[3:]],
    "long row": lambda ls, r: [*ls[:2], ls[2] + ",x", *ls[3:]],
    "blank line inside": lambda ls, r: [*ls[:3], "", *ls[3:]],
    "repeated row": lambda ls, r: [*ls, ls[1]],
    "conflicting row": lambda ls, r: [*ls, ls[1].replace(",", ",9", 1)],
    "header only": lambda ls, r: ls[:1],
    "header padded": lambda ls, r: [", ".join(ls[0].split(",")), *ls[1:]],
    "repeated column name": lambda ls, r: [
        ls[0].rsplit(",", 1)[0] + "," + ls[0].split(",")[0],
        *ls[1:],
    ],
}


def _csv_variants(data: bytes, alteration: str, seed: int) -> list[bytes]:
    text = data.decode()
    newline = "\r\n" if "\r\n" in text else "\n"
    lines = text.rstrip(newline).split(newline)
    altered = CSV_ALTERATIONS[alteration](lines, random.Random(seed))
    body = newline.join(altered) + newline
    return [body.encode()]


@pytest.mark.parametrize("dataset", DATASETS, ids=lambda d: d.value)
@pytest.mark.parametrize("alteration", sorted(CSV_ALTERATIONS))
def test_altered_csv_exports_read_alike(dataset: Dataset, alteration: str) -> None:
    for name, data in payloads(dataset, "csv"):
        for seed in range(3):
            for variant in _csv_variants(data, alteration, seed):
                fast, slow, _ = both_paths(Iso.PJM, dataset, variant, name)
                assert fast == slow, (alteration, seed)


@pytest.mark.parametrize("dataset", DATASETS, ids=lambda d: d.value)
def test_encodings_and_line_endings_read_alike(dataset: Dataset) -> None:
    for name, data in payloads(dataset, "csv"):
        text = data.decode().replace("\r\n", "\n")
        variants = {
            "LF": text.encode(),
            "CRLF": text.replace("\n", "\r\n").encode(),
            "CR": text.replace("\n", "\r").encode(),
            "BOM": b"\xef\xbb\xbf" + data,
            "cp1252": (text.replace("HUB", "HÜB", 1)).encode("cp1252"),
            "no final newline": text.rstrip("\n").encode(),
        }
        for label, variant in variants.items():
            fast, slow, _ = both_paths(Iso.PJM, dataset, variant, name)
            assert fast == slow, label


@pytest.mark.parametrize("dataset", DATASETS, ids=lambda d: d.value)
def test_regular_payloads_take_the_columnar_path(dataset: Dataset) -> None:
    for fmt in ("csv", "json"):
        for name, data in payloads(dataset, fmt):
            fast, slow, answered = both_paths(Iso.PJM, dataset, data, name)
            assert answered, (fmt, name)
            assert fast == slow


# --- JSON pages: alterations of the items -------------------------------------------------

JSON_ALTERATIONS: dict[str, Callable[[dict[str, object], str], object]] = {
    "null": lambda item, key: None,
    "number as text": lambda item, key: str(item[key]),
    "boolean": lambda item, key: True,
    "integer": lambda item, key: 7,
    "large integer": lambda item, key: 2**70,
    "nested": lambda item, key: [1],
    "empty text": lambda item, key: "",
    "object": lambda item, key: {"a": 1},
}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    dataset=st.sampled_from(DATASETS),
    alteration=st.sampled_from(sorted(JSON_ALTERATIONS)),
    seed=st.integers(0, 1000),
)
def test_altered_json_pages_read_alike(dataset: Dataset, alteration: str, seed: int) -> None:
    name, data = payloads(dataset, "json")[0]
    document = json.loads(data)
    items = document["items"] if isinstance(document, dict) else document
    rng = random.Random(seed)
    item = items[rng.randrange(len(items))]
    key = rng.choice(sorted(item))
    item[key] = JSON_ALTERATIONS[alteration](item, key)
    variant = json.dumps(document).encode()
    fast, slow, _ = both_paths(Iso.PJM, dataset, variant, name)
    assert fast == slow


def test_a_small_payload_is_left_to_the_row_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(columns, "SMALL_PAYLOAD_BYTES", 1 << 30)
    name, data = payloads(Dataset.LMP_DA_HOURLY, "csv")[0]
    fast, slow, answered = both_paths(Iso.PJM, Dataset.LMP_DA_HOURLY, data, name)
    assert not answered
    assert fast == slow
    assert isinstance(fast, list)
    assert fast  # records, read by the row loop


def test_a_batch_is_built_only_when_read() -> None:
    name, data = payloads(Dataset.LMP_RT_5MIN, "csv")[0]
    batch = parse_lmp_rt_5min(data, name)
    assert isinstance(batch, RecordBatch)
    assert "not built" in repr(batch)
    first = batch[0]
    assert "built" in repr(batch)
    assert "not built" not in repr(batch)
    assert first.iso == "PJM"


def test_a_nested_json_value_is_rejected_by_name() -> None:
    name, data = payloads(Dataset.LMP_DA_HOURLY, "json")[0]
    document = json.loads(data)
    document["items"][2]["datetime_beginning_utc"] = [1]
    fast, slow, answered = both_paths(
        Iso.PJM, Dataset.LMP_DA_HOURLY, json.dumps(document).encode(), name
    )
    assert not answered
    assert (
        fast
        == slow
        == ("ParseError", f"{name}, row 3: datetime_beginning_utc is a JSON list, not a value")
    )


def test_integers_beyond_64_bits_are_read_as_the_json_module_reads_them() -> None:
    name, data = payloads(Dataset.LMP_DA_HOURLY, "json")[0]
    document = json.loads(data)
    document["items"][0]["voltage"] = 2**70
    fast, slow, answered = both_paths(
        Iso.PJM, Dataset.LMP_DA_HOURLY, json.dumps(document).encode(), name
    )
    assert not answered  # orjson would read it as a float
    assert fast == slow
    assert isinstance(fast, list)
    assert fast[0][1]["voltage"] == str(2**70)
