"""The specialised reader gives exactly the row the generic decode and the fold give, takes
nothing it should not (another schema id, short or long values), and its gate never passes an
event the fold would refuse or change."""

from __future__ import annotations

import io
import math
import struct
from datetime import UTC, datetime, timedelta
from typing import Any

import fastavro
import pytest
from hypothesis import given
from hypothesis import strategies as st

from projections.errors import FoldError
from projections.folds import fold_lmp, lmp_row_fits
from projections.rowdecode import ROW_DECODE_ERRORS, row_decoder
from projections.tables import LMP
from schemas.contracts import ContractSet

CONTRACT = ContractSet().get("energy.optibid.market.LmpPublished")
HEADER = struct.pack(">bI", 0, 42)
READ = row_decoder(CONTRACT.text, LMP.column_names, HEADER)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

times = st.integers(-(2**40), 2**52).map(lambda us: EPOCH + timedelta(microseconds=us))
prices = st.floats(allow_nan=True, allow_infinity=True)
events = st.fixed_dictionaries(
    {
        "event_id": st.text(),
        "occurred_at_utc": times,
        "recorded_at_utc": times,
        "source": st.text(),
        "schema_version": st.integers(-(2**31), 2**31 - 1),
        "iso": st.sampled_from(["PJM", "CAISO", "ERCOT", "MISO", ""]),
        "market": st.sampled_from(["DA_HOURLY", "RT_5MIN", "RT_15MIN", "RT_HOURLY", "X"]),
        "location_id": st.text(max_size=8),
        "location_name": st.none() | st.text(),
        "location_type": st.text(max_size=8),
        "interval_start_utc": times,
        "interval_minutes": st.sampled_from([5, 15, 60, 0, -5, 2**31 - 1]),
        "lmp_usd_per_mwh": prices,
        "energy_usd_per_mwh": st.none() | prices,
        "congestion_usd_per_mwh": st.none() | prices,
        "loss_usd_per_mwh": st.none() | prices,
        "revision": st.integers(-(2**63), 2**63 - 1),
        "supersedes_revision": st.none() | st.integers(-(2**63), 2**63 - 1),
        "run_id": st.text(),
        "source_dataset": st.text(),
    }
)


def framed(event: dict[str, Any], header: bytes = HEADER) -> bytes:
    buffer = io.BytesIO()
    buffer.write(header)
    fastavro.schemaless_writer(buffer, CONTRACT.parsed, event)
    return buffer.getvalue()


def same(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    """Equal, NaN equal to NaN."""
    return all(
        (isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y))
        or x == y
        for x, y in zip(a, b, strict=True)
    )


@given(events)
def test_the_reader_gives_the_generic_decode_in_column_order(event: dict[str, Any]) -> None:
    assert READ is not None
    value = framed(event)
    decoded = fastavro.schemaless_reader(io.BytesIO(value[len(HEADER) :]), CONTRACT.parsed, None)
    assert isinstance(decoded, dict)
    row = READ(value)
    assert same(row, tuple(decoded[c] for c in LMP.column_names))
    if lmp_row_fits(row):  # the gate passes only what the fold takes, as it is
        assert same(fold_lmp(decoded, "t"), row)
    else:
        with pytest.raises(FoldError):
            fold_lmp(decoded, "t")


@given(events, st.data())
def test_the_reader_refuses_cut_padded_or_foreign_values(
    event: dict[str, Any], data: st.DataObject
) -> None:
    assert READ is not None
    value = framed(event)
    cut = data.draw(st.integers(0, len(value) - 1))
    for wrong in (
        value[:cut],
        value + b"\x00",
        framed(event, struct.pack(">bI", 0, 43)),
        framed(event, struct.pack(">bI", 1, 42)),
    ):
        with pytest.raises(ROW_DECODE_ERRORS):
            READ(wrong)


def test_schemas_it_cannot_read_get_no_reader() -> None:
    nested = (
        '{"type": "record", "name": "R", "fields": [{"name": "a", "type":'
        ' {"type": "array", "items": "long"}}]}'
    )
    assert row_decoder(nested, ["a"], HEADER) is None
    assert row_decoder(CONTRACT.text, ["no_such_field"], HEADER) is None
    assert READ is not None
