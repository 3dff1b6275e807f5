"""The columnar path of the PJM parsers (see connectors.columnar): the regular case of every
Data Miner 2 format, checked a column at a time. Each function returns None for anything
irregular, and parse.py's row loops then read the payload (or name what is wrong with it)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from itertools import chain
from operator import itemgetter
from typing import Any

import numpy as np

from connectors.columnar import (
    Codes,
    Frame,
    RecordBatch,
    array,
    canonical,
    codes,
    csv_frame,
    distinct,
    floats,
    load_json,
    pairs,
    texts,
)
from connectors.pjm.feeds import EPT_COLUMN, LOCATION_TYPES, UTC_COLUMN
from connectors.pjm.table import Table, cell_text, same_instant, utc_instant
from connectors.records import PUBLISH_TIME, VERSION, LmpRecord, Record
from connectors.tabular import sniff

ISO = "PJM"


def frame(data: bytes) -> Frame | None:
    """A CSV export, JSON page or JSON export as a Frame; None where irregular."""
    kind = sniff(data)
    if kind == "csv":
        return csv_frame(data)
    if kind != "json":
        return None
    document = load_json(data)
    if isinstance(document, dict):
        if "errors" in document or not isinstance(document.get("items"), list):
            return None
        items = document["items"]
    elif isinstance(document, list):
        items = document
    else:
        return None
    if not items or not isinstance(items[0], dict) or len(items[0]) < 2:
        return None
    header = [str(name) for name in items[0]]
    try:
        cells = list(chain.from_iterable(map(itemgetter(*header), items)))
    except (KeyError, TypeError):  # a short or non-object item: the row path names it
        return None
    table = Table(header, cells, len(header))
    width = len(header)
    at = table.index

    def column(name: str) -> Any:
        return array(cells[at[name] :: width])

    def natives() -> Callable[[int], Mapping[str, str]]:
        return lambda row: table.native(row * width)

    return Frame(header, len(items), column, natives)


def starts(found: Frame, minutes: int) -> tuple[Codes, int, list[datetime]] | None:
    """(per-row code, count, distinct UTC interval starts) from the UTC label checked against
    the EPT label, once per distinct pair; None if a label does not convert, disagrees or is
    off the `minutes` grid (0: any time)."""
    utc = found.column(UTC_COLUMN)
    utc_codes = None if utc is None else codes(utc)
    if utc_codes is None:
        return None
    if EPT_COLUMN in found.header:
        ept = found.column(EPT_COLUMN)
        ept_codes = None if ept is None else codes(ept)
        if ept_codes is None:
            return None
        row_pairs, distinct_pairs = pairs(
            utc_codes[0], len(utc_codes[1]), ept_codes[0], len(ept_codes[1])
        )
        labels = [(utc_codes[1][u], ept_codes[1][e]) for u, e in distinct_pairs.tolist()]
    else:
        row_pairs = utc_codes[0]
        labels = [(label, None) for label in utc_codes[1]]
    converted: list[datetime] = []
    for utc_label, ept_label in labels:
        try:
            start = utc_instant(cell_text(utc_label))
            if ept_label is not None and not same_instant(cell_text(ept_label), start):
                return None
        except (ValueError, TypeError, OverflowError):
            return None
        if minutes and (start.minute % minutes or start.second or start.microsecond):
            return None
        converted.append(start)
    return canonical(converted, row_pairs)


def _texts(found: Frame, name: str, *, non_empty: bool) -> tuple[Codes, int, list[str]] | None:
    column = found.column(name)
    coded = None if column is None else codes(column)
    if coded is None:
        return None
    values = texts(coded[1])
    if non_empty and "" in values:
        return None
    return canonical(values, coded[0])


def _versions(found: Frame) -> tuple[Codes, int, list[int]] | None:
    column = found.column("version_nbr")
    coded = None if column is None else codes(column)
    if coded is None:
        return None
    values: list[int] = []
    for label in coded[1]:
        try:
            values.append(int(cell_text(label).strip()))
        except ValueError:
            return None
    return canonical(values, coded[0])


def lmp(
    data: bytes, source: str, market: str, suffix: str, minutes: int, *, unverified: bool
) -> RecordBatch | None:
    """The columnar path of parse._parse_lmp."""
    found = frame(data)
    if found is None:
        return None
    verified = not unverified or "version_nbr" in found.header
    names = ["pnode_id", "pnode_name", "type", f"total_lmp_{suffix}"]
    names += [f"congestion_price_{suffix}", f"marginal_loss_price_{suffix}"]
    if verified:
        names += [f"system_energy_price_{suffix}", "version_nbr"]
    if not found.has(UTC_COLUMN, *names):
        return None
    when = starts(found, minutes)
    pnodes = _texts(found, "pnode_id", non_empty=True)
    kinds = found.column("type")
    kind_codes = None if kinds is None else codes(kinds)
    location_types = None if kind_codes is None else [LOCATION_TYPES.get(k) for k in kind_codes[1]]
    location_names = found.column("pnode_name")
    total = found.column(f"total_lmp_{suffix}")
    congestion = found.column(f"congestion_price_{suffix}")
    loss = found.column(f"marginal_loss_price_{suffix}")
    energy = found.column(f"system_energy_price_{suffix}") if verified else None
    prices = [None if c is None else floats(c) for c in (total, congestion, loss, energy)]
    versions = _versions(found) if verified else (np.zeros(found.rows, np.int64), 1, [0])
    if (
        when is None
        or pnodes is None
        or kind_codes is None
        or location_types is None
        or None in location_types
        or location_names is None
        or versions is None
        or any(p is None for p in prices[:3])
        or (verified and prices[3] is None)
    ):
        return None
    if not distinct((pnodes[0], pnodes[1]), (when[0], when[1]), (versions[0], versions[1])):
        return None  # repeats: the row path keeps verbatim ones once, rejects conflicting ones
    revision_kind = VERSION if verified else PUBLISH_TIME
    total_values, congestion_values, loss_values, energy_values = prices

    def build() -> list[Record]:
        pnode_ids, interval_starts, revisions = pnodes[2], when[2], versions[2]
        types = location_types
        name_cells = texts(location_names.to_pylist())
        totals = total_values.tolist()  # type: ignore[union-attr]
        congestions = congestion_values.tolist()  # type: ignore[union-attr]
        losses = loss_values.tolist()  # type: ignore[union-attr]
        if energy_values is not None:
            energies = energy_values.tolist()
        else:  # the unverified feed omits energy: PJM's identity gives it, at its 6 decimals
            energies = [
                round(t - c - s, 6) for t, c, s in zip(totals, congestions, losses, strict=True)
            ]
        native = found.natives()
        return [
            LmpRecord(
                ISO,
                market,
                pnode_ids[p],
                name_cells[row] or None,
                types[k],
                interval_starts[s],
                minutes,
                totals[row],
                energies[row],
                congestions[row],
                losses[row],
                revisions[v],
                revision_kind,
                source,
                row + 1,
                native(row),
            )
            for row, (p, k, s, v) in enumerate(
                zip(
                    pnodes[0].tolist(),
                    kind_codes[0].tolist(),
                    when[0].tolist(),
                    versions[0].tolist(),
                    strict=True,
                )
            )
        ]

    return RecordBatch(found.rows, build)
