"""The one vocabulary agrees with the enums, the catalog and the contracts."""

from __future__ import annotations

import pytest

from schemas.catalog import ISO_DATASETS, Dataset, Iso
from schemas.timeutil import zone
from schemas.vocabulary import ISOS, MARKET_DATASET, MARKETS, TIME_ZONES, Market, series_key


def test_the_wire_isos_are_the_catalogs_isos_upper_case() -> None:
    assert tuple(iso.wire for iso in Iso) == ISOS
    assert tuple(iso.value.upper() for iso in Iso) == ISOS
    assert [Iso.from_wire(wire) for wire in ISOS] == list(Iso)
    assert set(TIME_ZONES) == set(ISOS)
    assert str(zone("ERCOT")) == "America/Chicago"


def test_an_iso_outside_the_vocabulary_is_named_in_the_error() -> None:
    with pytest.raises(ValueError, match="unknown ISO 'pjm'"):
        Iso.from_wire("pjm")
    with pytest.raises(ValueError, match="unknown ISO 'MISO'"):
        zone("MISO")


def test_every_market_is_a_dataset_some_iso_publishes() -> None:
    assert set(MARKET_DATASET) == set(MARKETS) == {m.value for m in Market}
    published = {d for datasets in ISO_DATASETS.values() for d in datasets}
    assert {Dataset(d) for d in MARKET_DATASET.values()} <= published


def test_the_series_key_is_the_topics_key() -> None:
    assert series_key("PJM", Market.RT_5MIN, "51288") == "PJM|RT_5MIN|51288"
