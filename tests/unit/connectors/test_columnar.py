"""The columnar path of every parser reads what its row path reads (connectors.columnar).

For every contract case (recorded payloads and hand-written edge cases), every malformed
payload, and simulated responses of every format on ordinary and DST days with faults
(duplicates, revisions, missing rows): the parse with the columnar readers on equals the parse
with them off, record for record and native field for native field; a payload one path rejects
the other rejects with the same message. And the columnar path does answer for the regular
payloads of each format (it must not decline everything and leave the speed to chance).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from typing import Any

import pytest

from connectors.columnar import RecordBatch, row_path_only
from connectors.errors import ConnectorError
from connectors.parsing import parser_for
from connectors.pjm.feeds import FEEDS as PJM_FEEDS
from connectors.pjm.simulate import simulate as pjm
from connectors.records import Record
from connectors.simulate import Faults, Payload, SimRequest
from schemas.catalog import ISO_DATASETS, Dataset, Iso
from schemas.timeutil import local_midnight_utc
from tests.unit.connectors.contract import MalformedCase, ParserCase
from tests.unit.connectors.test_parser_contract import CASES, MALFORMED


@pytest.fixture(autouse=True)
def columnar_at_any_size(monkeypatch: pytest.MonkeyPatch) -> None:
    """The columnar paths leave small payloads to the row loops (faster there); here they
    read payloads of any size, so that the hand-written and simulated ones exercise them."""
    for iso in Iso:
        try:
            module = importlib.import_module(f"connectors.{iso.value}.columns")
        except ModuleNotFoundError:
            continue
        monkeypatch.setattr(module, "SMALL_PAYLOAD_BYTES", 0, raising=False)


def outcome(parse: Callable[[bytes, str], Sequence[Record]], data: bytes, name: str) -> Any:
    """(records with their native fields as dicts) or the error's type and message."""
    try:
        records = parse(data, name)
        return [(record, dict(record.native_fields)) for record in records]
    except ConnectorError as exc:
        return (type(exc).__name__, str(exc))


def both_paths(iso: Iso, dataset: Dataset, data: bytes, name: str) -> tuple[Any, Any, bool]:
    """(columnar outcome, row outcome, whether the columnar path answered)."""
    parse = parser_for(iso, dataset)
    try:
        answered = isinstance(parse(data, name), RecordBatch)
    except ConnectorError:
        answered = False
    fast = outcome(parse, data, name)
    with row_path_only():
        slow = outcome(parse, data, name)
    return fast, slow, answered


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_contract_payloads_read_alike(case: ParserCase) -> None:
    name, data = case.load()
    fast, slow, _ = both_paths(case.iso, case.dataset, data, name)
    assert fast == slow


@pytest.mark.parametrize("case", MALFORMED, ids=lambda case: case.id)
def test_malformed_payloads_are_rejected_alike(case: MalformedCase) -> None:
    name, data = case.load()
    fast, slow, answered = both_paths(case.iso, case.dataset, data, name)
    assert fast == slow
    assert not answered
    assert isinstance(fast, tuple)  # rejected, by the row path's message


# --- simulated responses: every format, ordinary and DST days, with faults -----------------

ORDINARY, SPRING, FALL = date(2024, 6, 3), date(2024, 3, 10), date(2024, 11, 3)
FAULTY = Faults(missing_rate=0.02, revision_rate=0.05, duplicate_rate=0.02)


def simulated(iso: Iso, dataset: Dataset, day: date, faults: Faults) -> list[Payload]:
    start = local_midnight_utc(iso.value.upper(), day)
    end = local_midnight_utc(iso.value.upper(), day + timedelta(days=1))
    request = SimRequest(dataset, start, end, locations=6, faults=faults)
    if iso is Iso.PJM:
        return [
            payload
            for feed in PJM_FEEDS[dataset]
            for fmt in ("json", "csv")
            for payload in pjm(request, feed=feed.name, fmt=fmt)
        ]
    module = importlib.import_module(f"connectors.{iso.value}.simulate")
    payloads: list[Payload] = module.simulate(request)
    return payloads


def _formats() -> list[tuple[Iso, Dataset]]:
    return [(iso, dataset) for iso in Iso for dataset in ISO_DATASETS[iso]]


@pytest.mark.parametrize(("iso", "dataset"), _formats(), ids=lambda v: str(getattr(v, "value", v)))
@pytest.mark.parametrize("day", [ORDINARY, SPRING, FALL], ids=str)
def test_simulated_payloads_read_alike(iso: Iso, dataset: Dataset, day: date) -> None:
    for faults in (Faults(), FAULTY):
        for name, data in simulated(iso, dataset, day, faults):
            fast, slow, _ = both_paths(iso, dataset, data, name)
            assert fast == slow, name


# The formats whose regular payloads the columnar path must read: each ISO's cases module
# names its own in COLUMNAR.
COLUMNAR: set[tuple[Iso, Dataset]] = set()
for _iso in Iso:
    _cases = importlib.import_module(f"tests.unit.connectors.cases_{_iso.value}")
    COLUMNAR |= {(_iso, dataset) for dataset in getattr(_cases, "COLUMNAR", ())}


@pytest.mark.parametrize(("iso", "dataset"), sorted(COLUMNAR), ids=lambda v: str(v.value))
def test_the_columnar_path_answers_for_regular_payloads(iso: Iso, dataset: Dataset) -> None:
    for name, data in simulated(iso, dataset, ORDINARY, Faults()):
        assert isinstance(parser_for(iso, dataset)(data, name), RecordBatch), name
