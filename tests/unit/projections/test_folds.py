"""Each fold turns one event into one row, in its table's column order, without a database;
bad events raise FoldError naming the field."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from projections.errors import FoldError
from projections.folds import (
    dataset_of,
    dead_letter,
    fold_dead_letter,
    fold_kpi,
    fold_lmp,
    fold_series_status,
    iso_of,
)
from projections.models import READ_MODEL_LIST, TopicSource
from projections.tables import DEAD_LETTERS, LMP, TABLES
from schemas.catalog import READ_MODELS, TopicCatalog
from schemas.contracts import ContractSet

AT = datetime(2024, 11, 3, 5, 0, tzinfo=UTC)
CONTRACTS = ContractSet()
ENVELOPE = {
    "event_id": "e-1",
    "occurred_at_utc": AT,
    "recorded_at_utc": AT + timedelta(seconds=1),
    "source": "worker:normalise",
    "schema_version": 1,
}


def lmp(**changes: Any) -> dict[str, Any]:
    return {
        **ENVELOPE,
        "iso": "PJM",
        "market": "RT_5MIN",
        "location_id": "51288",
        "location_name": "WESTERN HUB",
        "location_type": "HUB",
        "interval_start_utc": AT,
        "interval_minutes": 5,
        "lmp_usd_per_mwh": -12.5,  # negative prices are prices
        "energy_usd_per_mwh": None,  # no components published
        "congestion_usd_per_mwh": None,
        "loss_usd_per_mwh": None,
        "revision": 2,
        "supersedes_revision": 1,
        "run_id": "run-1",
        "source_dataset": "lmp_rt_5min",
        **changes,
    }


def test_lmp_row_has_the_canonical_names_in_table_order() -> None:
    row = fold_lmp(lmp(), "core.market.lmp")
    assert dict(zip(LMP.column_names, row, strict=True)) == {
        k: v for k, v in lmp().items() if k != "schema_version"
    }


@pytest.mark.parametrize(
    ("change", "code", "named"),
    [
        ({"iso": "MISO"}, "UNKNOWN_ISO", "MISO"),
        ({"market": "RT_1MIN"}, "UNKNOWN_MARKET", "RT_1MIN"),
        ({"interval_minutes": 7}, "BAD_INTERVAL", "interval_minutes 7"),
        ({"lmp_usd_per_mwh": math.nan}, "NON_FINITE_VALUE", "lmp_usd_per_mwh nan"),
        ({"loss_usd_per_mwh": math.inf}, "NON_FINITE_VALUE", "loss_usd_per_mwh inf"),
        ({"interval_start_utc": datetime(1970, 1, 1, tzinfo=UTC)}, "BAD_TIME", "1970"),
        ({"interval_start_utc": datetime(2024, 1, 1)}, "BAD_TIME", "not a UTC"),  # naive
        ({"location_id": ""}, "EMPTY_FIELD", "location_id"),
        ({"revision": -1}, "BAD_REVISION", "-1"),
    ],
)
def test_a_bad_lmp_event_names_what_is_wrong(change: dict[str, Any], code: str, named: str) -> None:
    with pytest.raises(FoldError, match=named) as info:
        fold_lmp(lmp(**change), "core.market.lmp")
    assert info.value.code == code


def test_a_missing_field_is_a_fold_error() -> None:
    event = lmp()
    del event["run_id"]
    with pytest.raises(FoldError, match="no field 'run_id'"):
        fold_lmp(event, "core.market.lmp")


def example(full_name: str) -> dict[str, Any]:
    """A valid event of any contract, built from its .avsc (the first branch of unions)."""

    def value(name: str, schema: Any) -> Any:
        if isinstance(schema, list):
            return value(name, schema[1])
        if isinstance(schema, dict):
            if schema.get("logicalType") == "timestamp-micros":
                return AT + timedelta(hours=1 if "end" in name else 0)
            if schema["type"] == "array":
                return ["x"]
            return value(name, schema["type"])
        return {
            "string": {"iso": "PJM", "market": "DA_HOURLY", "window_kind": "HOUR",
                       "load_kind": "ACTUAL", "outcome": "FILLED",
                       "status": "RETIRED"}.get(name, f"{name}-1"),
            "int": 60 if "minutes" in name else 3,
            "long": 7,
            "double": 1.5,
            "bytes": b"\x00abc",
        }[schema]  # fmt: skip

    contract = CONTRACTS.get(full_name)
    return {f["name"]: value(f["name"], f["type"]) for f in contract.definition["fields"]}


# the source of each event a projector folds into the columns of the same names (dead letters
# keep their bytes' size instead, see below)
FOLDS: dict[str, TopicSource] = {
    source.full_name: source
    for model in READ_MODEL_LIST
    for source in model.sources(TopicCatalog("t."))
    if source.table is not DEAD_LETTERS
}


@pytest.mark.parametrize("full_name", sorted(FOLDS))
def test_every_fold_keeps_every_column_under_its_field_name(full_name: str) -> None:
    source = FOLDS[full_name]
    event = example(full_name)
    row = source.fold(event, "topic")
    assert dict(zip(source.table.column_names, row, strict=True)) == {
        c: event[c] for c in source.table.column_names
    }


def test_a_series_status_other_than_retired_or_active_is_refused() -> None:
    event = {**example("energy.optibid.ingest.SeriesStatusChanged"), "status": "SLEEPING"}
    with pytest.raises(FoldError, match="status 'SLEEPING' is not RETIRED or ACTIVE") as info:
        fold_series_status(event, "ingest.series_status")
    assert info.value.code == "BAD_STATUS"


def test_kpi_window_must_end_after_it_starts() -> None:
    event = {**example("energy.optibid.kpi.KpiComputed"), "window_end_utc": AT}
    with pytest.raises(FoldError, match=r"window_end_utc .* is not after") as info:
        fold_kpi(event, "kpi.lmp_hourly")
    assert info.value.code == "BAD_WINDOW"


def test_a_dead_letter_row_keeps_reasons_and_size_not_bytes() -> None:
    event = example("energy.optibid.ingest.RecordDeadLettered")
    row = fold_dead_letter(event, "dlq.pjm.lmp_rt_5min")
    values = dict(zip(TABLES["dead_letters"].column_names, row, strict=True))
    assert values["original_value_bytes"] == 4
    assert values["reason_codes"] == ["x"]
    assert values["dead_letter_topic"] == "dlq.pjm.lmp_rt_5min"


def test_a_poison_event_becomes_a_dead_letter_with_a_stable_id() -> None:
    args: dict[str, Any] = {
        "read_model": "lmp",
        "topic": "core.market.lmp",
        "partition": 2,
        "offset": 41,
        "key": b"ERCOT|RT_15MIN|HB_NORTH",
        "value": b"\x00\x00\x00\x7fjunk",
        "timestamp_utc": AT,
        "event": None,  # undecodable: ISO and dataset come from the key
        "error": FoldError("UNDECODABLE", "not avro"),
    }
    first = dead_letter(**args, now=AT)
    again = dead_letter(**args, now=AT + timedelta(hours=1))
    assert first["event_id"] == again["event_id"]
    assert (first["iso"], first["dataset"]) == ("ERCOT", "lmp_rt_15min")
    assert first["reason_codes"] == ["UNDECODABLE"]
    assert first["reasons"] == ["not avro"]
    assert first["source"] == "projector:lmp"


def test_iso_and_dataset_of_records_that_name_neither() -> None:
    assert iso_of(None, b"garbage") == "UNKNOWN"
    assert iso_of(None, None) == "UNKNOWN"
    assert dataset_of(None, b"PJM|load-area", "load") == "load-area"
    assert dataset_of(None, None, "fuel_mix") == "fuel_mix"
    assert dataset_of({"market": "DA_HOURLY"}, None, "kpis") == "lmp_da_hourly"


def test_every_read_model_has_a_dead_letter_topic_and_known_sources() -> None:
    assert tuple(m.name for m in READ_MODEL_LIST) == READ_MODELS
    catalog = TopicCatalog("t.")
    for model in READ_MODEL_LIST:
        assert catalog.projection_dlq(model.name).name == f"t.dlq.projections.{model.name}"
        for source in model.sources(catalog):
            assert source.table in model.tables
            CONTRACTS.get(source.full_name)
    dead = [s.topic.name for s in READ_MODEL_LIST[7].sources(catalog)]
    assert "t.dlq.pjm.lmp_rt_5min" in dead
    assert "t.dlq.projections.lmp" in dead
    assert "t.dlq.projections.dead_letters" not in dead  # never its own
