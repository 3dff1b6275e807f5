"""Confluent wire format framing and Avro round trips of the contracts, without a registry."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

import fastavro
import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.contracts import ContractSet
from schemas.errors import DeserializationError
from schemas.serde import frame, schema_id_of

LMP = ContractSet().get("energy.optibid.market.LmpPublished")

micros = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
prices = st.floats(min_value=-10_000, max_value=10_000, allow_nan=False)


@st.composite
def lmp_records(draw: st.DrawFn) -> dict[str, Any]:
    start = draw(micros)
    return {
        "event_id": draw(st.uuids()).hex,
        "occurred_at_utc": start + timedelta(minutes=5),
        "recorded_at_utc": draw(micros),
        "source": "test",
        "schema_version": 1,
        "iso": draw(st.sampled_from(["PJM", "CAISO", "ERCOT"])),
        "market": draw(st.sampled_from(["DA_HOURLY", "RT_5MIN", "RT_15MIN", "RT_HOURLY"])),
        "location_id": draw(st.text(min_size=1, max_size=30)),
        "location_name": draw(st.none() | st.text(max_size=30)),
        "location_type": "NODE",
        "interval_start_utc": start,
        "interval_minutes": draw(st.sampled_from([5, 15, 60])),
        "lmp_usd_per_mwh": draw(prices),
        "energy_usd_per_mwh": draw(st.none() | prices),
        "congestion_usd_per_mwh": draw(st.none() | prices),
        "loss_usd_per_mwh": draw(st.none() | prices),
        "revision": draw(st.integers(min_value=0, max_value=2**62)),
        "supersedes_revision": draw(st.none() | st.integers(min_value=0, max_value=2**62)),
        "run_id": "run",
        "source_dataset": "lmp_rt_5min",
    }


@given(record=lmp_records(), schema_id=st.integers(min_value=0, max_value=2**31 - 1))
def test_framed_lmp_round_trips_exactly(record: dict[str, Any], schema_id: int) -> None:
    data = frame(schema_id, LMP.parsed, record)
    assert data[0] == 0
    assert schema_id_of(data) == schema_id
    decoded = fastavro.schemaless_reader(io.BytesIO(data[5:]), LMP.parsed, None)
    assert decoded == record


def test_a_value_without_the_magic_byte_is_named_as_such() -> None:
    with pytest.raises(DeserializationError, match="not the Confluent magic byte"):
        schema_id_of(b"\x07\x00\x00\x00\x01rest")


def test_a_truncated_header_is_rejected() -> None:
    with pytest.raises(DeserializationError, match="shorter than the 5-byte header"):
        schema_id_of(b"\x00\x00")


def test_a_record_missing_a_required_field_does_not_serialise() -> None:
    with pytest.raises((ValueError, KeyError, TypeError)):
        frame(1, LMP.parsed, {"event_id": "x"})
