"""The .avsc files are the contract: each parses, documents every field, carries the envelope."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import fastavro
import pytest

from schemas.contracts import ENVELOPE_FIELDS, Contract, ContractSet
from schemas.envelope import SCHEMA_VERSION, envelope
from schemas.errors import SchemaNotFoundError

CONTRACTS = ContractSet()
AT_ = datetime(2024, 11, 3, 6, tzinfo=UTC)
ALL = list(CONTRACTS)


def _fields(definition: dict[str, object]) -> list[dict[str, object]]:
    fields = definition["fields"]
    assert isinstance(fields, list)
    return fields


def test_the_v1_market_data_path_is_complete() -> None:
    expected = {
        "energy.optibid.raw.LmpReported",
        "energy.optibid.raw.LoadReported",
        "energy.optibid.raw.FuelMixReported",
        "energy.optibid.raw.AncillaryPriceReported",
        "energy.optibid.market.LmpPublished",
        "energy.optibid.market.LoadPublished",
        "energy.optibid.market.FuelMixPublished",
        "energy.optibid.market.AncillaryPricePublished",
        "energy.optibid.ingest.GapDetected",
        "energy.optibid.ingest.SeriesStatusChanged",
        "energy.optibid.ingest.BackfillRequested",
        "energy.optibid.ingest.BackfillCompleted",
        "energy.optibid.ingest.ConnectorRunCompleted",
        "energy.optibid.ingest.ConnectorCheckpointed",
        "energy.optibid.ingest.FreshnessUpdated",
        "energy.optibid.market.LocationDiscovered",
        "energy.optibid.ingest.RecordDeadLettered",
        "energy.optibid.kpi.KpiComputed",
    }
    identity = {
        "energy.optibid.identity.IdentityCommand",
        "energy.optibid.identity.IdentityEvent",
        "energy.optibid.identity.IdentityCommandOutcome",
        "energy.optibid.identity.AuditRecorded",
    }
    usage = {"energy.optibid.usage.RequestServed", "energy.optibid.usage.UsageWindowClosed"}
    assert set(CONTRACTS.names()) == expected | identity | usage


@pytest.mark.parametrize("contract", ALL, ids=lambda c: c.name)
def test_schema_parses_and_documents_every_field(contract: Contract) -> None:
    fastavro.parse_schema(contract.definition)
    assert contract.definition.get("doc"), f"{contract.full_name} has no doc"
    undocumented = [f["name"] for f in _fields(contract.definition) if not f.get("doc")]
    assert undocumented == [], f"{contract.full_name}: fields without doc: {undocumented}"


@pytest.mark.parametrize("contract", ALL, ids=lambda c: c.name)
def test_every_event_carries_the_envelope(contract: Contract) -> None:
    assert contract.field_names[: len(ENVELOPE_FIELDS)] == ENVELOPE_FIELDS


@pytest.mark.parametrize("contract", ALL, ids=lambda c: c.name)
def test_times_are_utc_micros_and_named_so(contract: Contract) -> None:
    for field in _fields(contract.definition):
        name = str(field["name"])
        type_ = field["type"]
        branches = type_ if isinstance(type_, list) else [type_]
        is_timestamp = any(
            isinstance(b, dict) and b.get("logicalType") == "timestamp-micros" for b in branches
        )
        assert is_timestamp == name.endswith("_utc"), f"{contract.full_name}.{name}"


@pytest.mark.parametrize("contract", ALL, ids=lambda c: c.name)
def test_quantities_carry_their_unit_in_the_name(contract: Contract) -> None:
    unit = re.compile(r"_(usd_per_mwh|usd_per_mw_hour|mw|seconds|intervals|share)$")
    for field in _fields(contract.definition):
        type_ = field["type"]
        branches = type_ if isinstance(type_, list) else [type_]
        if "double" in branches and field["name"] != "value":  # KpiComputed names its unit
            assert unit.search(str(field["name"])), f"{contract.full_name}.{field['name']}"


def test_canonical_lmp_uses_the_canonical_names() -> None:
    names = set(CONTRACTS.get("energy.optibid.market.LmpPublished").field_names)
    assert {
        "iso",
        "market",
        "location_id",
        "location_name",
        "location_type",
        "interval_start_utc",
        "interval_minutes",
        "lmp_usd_per_mwh",
        "energy_usd_per_mwh",
        "congestion_usd_per_mwh",
        "loss_usd_per_mwh",
        "revision",
    } <= names


def test_unknown_schema_names_the_known_ones() -> None:
    with pytest.raises(SchemaNotFoundError, match=r"energy\.optibid\.market\.LmpPublished"):
        CONTRACTS.get("energy.optibid.market.Nope")


@pytest.mark.parametrize("contract", ALL, ids=lambda c: c.name)
def test_the_one_envelope_builder_writes_what_every_schema_begins_with(contract: Contract) -> None:
    built = envelope(event_id="e", occurred_at_utc=None, recorded_at_utc=AT_, source="s")
    fields = _fields(contract.definition)[: len(ENVELOPE_FIELDS)]
    assert tuple(built) == tuple(f["name"] for f in fields) == ENVELOPE_FIELDS
    version = next(f for f in fields if f["name"] == "schema_version")
    assert built["schema_version"] == version["default"] == SCHEMA_VERSION
