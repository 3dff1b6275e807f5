"""The answer models name what the routes send: the read models' columns, in their order."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from api.history import DATASETS
from api.models.history import (
    AncillaryPriceHistoryRow,
    FuelMixHistoryRow,
    KpiHistoryRow,
    LmpHistoryRow,
    LoadHistoryRow,
)
from api.models.latest import EXAMPLE_LATEST, KpiLatestRow, LmpLatestList, LmpLatestRow
from api.models.live import KpiUpdate, LmpUpdate
from api.models.quality import FreshnessRow
from api.rows import ENVELOPE_COLUMNS
from projections.tables import FRESHNESS, KPIS, LMP, TableSpec


def fields(model: type[BaseModel]) -> list[str]:
    return list(model.model_fields)


def without_envelope(table: TableSpec) -> list[str]:
    return [c for c in table.column_names if c not in ENVELOPE_COLUMNS]


def test_latest_and_live_rows_are_the_read_models_rows() -> None:
    assert fields(LmpLatestRow) == [*without_envelope(LMP), "age_seconds"]
    assert fields(KpiLatestRow) == without_envelope(KPIS)  # validated: its order is sent
    assert set(fields(LmpUpdate)) == set(LMP.column_names)  # what the projector publishes
    assert set(fields(KpiUpdate)) == set(KPIS.column_names)
    assert fields(FreshnessRow) == without_envelope(FRESHNESS)


@pytest.mark.parametrize(
    ("name", "row"),
    [
        ("lmp", LmpHistoryRow),
        ("load", LoadHistoryRow),
        ("fuel-mix", FuelMixHistoryRow),
        ("ancillary-prices", AncillaryPriceHistoryRow),
        ("kpis", KpiHistoryRow),
    ],
)
def test_a_history_row_requires_its_series_columns_and_allows_the_chosen_ones(
    name: str, row: type[BaseModel]
) -> None:
    # the series columns are in every row: key columns come always, resampling groups by them
    assert fields(row) == list(DATASETS[name].series)
    assert row.model_json_schema()["additionalProperties"] is True


def test_the_documented_example_of_latest_prices_is_a_valid_answer() -> None:
    LmpLatestList.model_validate(EXAMPLE_LATEST)
