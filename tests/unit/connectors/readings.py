"""What the connector tests read off a record of any kind."""

from __future__ import annotations

from connectors.records import AsPriceRecord, FuelMixRecord, LmpRecord, LoadRecord, Record


def reading(record: Record) -> tuple[str, float]:
    """A record's series, named as the ISO names it (location, product, area or fuel), and the
    number it carries there (price, load or generation)."""
    match record:
        case (
            LmpRecord(location_id=name, lmp_usd_per_mwh=number)
            | AsPriceRecord(product_native=name, price_usd_per_mw_hour=number)
            | LoadRecord(area_id=name, load_mw=number)
            | FuelMixRecord(fuel_type_native=name, generation_mw=number)
        ):
            return name, number


def value(record: Record) -> float:
    """The number a record carries: its price, load or generation."""
    return reading(record)[1]
