"""OASIS price reports: LMPs (PRC_LMP, PRC_RTPD_LMP, PRC_INTVL_LMP) and ancillary service
clearing prices (PRC_AS, PRC_INTVL_AS), pure functions of the response bytes.

An LMP report has one row per component (LMP_TYPE LMP, MCE, MCC, MCL, MGHG); they are pivoted
to one record per (node, interval, revision), across zip members too (grp_type=ALL answers with
a member per component). lmp is the published LMP; energy, congestion and loss are MCE, MCC and
MCL; MGHG stays in native_fields as LMP_GHG_PRC, so energy + congestion + loss = lmp - ghg.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from operator import itemgetter

from connectors.caiso import columns as columnar
from connectors.caiso.feeds import (
    AS_MARKETS,
    AS_PRICE_ITEMS,
    AS_PRODUCTS,
    AS_REGION,
    AS_TYPE,
    COMPONENT_NATIVE,
    DATA_ITEM,
    ISO,
    LMP_COMPONENTS,
    LMP_NODE_ID,
    LMP_NODE_NAME,
    LMP_QUERIES,
    LMP_TYPE,
    PRC_AS,
    RUN_COLUMNS,
    XML_DATA_ITEM,
    XML_RESOURCE,
    XML_RUN_COLUMNS,
    XML_VALUE,
    location_type,
)
from connectors.caiso.oasis import NativeRow, Report, Spans, number, read_reports
from connectors.parsing import Parser
from connectors.records import PUBLISH_TIME, AsPriceRecord, LmpRecord, Record
from schemas.catalog import Dataset

# LMP ---------------------------------------------------------------------------------------

_SLOTS = {"lmp": 0, "energy": 1, "congestion": 2, "loss": 3, "ghg": 4}
_Cell = tuple[str, int, list[str], Report]  # (value text, row number, row, report)


def lmp_parser(dataset: Dataset) -> Parser:
    query, market = LMP_QUERIES[dataset]
    csv_names = (*RUN_COLUMNS, LMP_NODE_ID, LMP_NODE_NAME, LMP_TYPE, query.value_column)
    xml_names = (*XML_RUN_COLUMNS, XML_RESOURCE, XML_RESOURCE, XML_DATA_ITEM, XML_VALUE)

    def parse(data: bytes, source: str) -> Sequence[Record]:
        fast = columnar.lmp(
            data, source, csv_names, query.market_run_id or "", query.minutes, market
        )
        if fast is not None:
            return fast
        groups: dict[tuple[str, datetime, int], list[_Cell | None]] = {}
        names: dict[Report, int] = {}  # report -> index of its node name column
        for report in read_reports(data, source):
            columns = report.columns(xml_names if report.xml else csv_names, source)
            names[report] = columns[4]
            _lmp_rows(report, columns, query.market_run_id or "", query.minutes, groups, source)
        return _lmp_records(groups, names, market, query.minutes, source)

    parse.__doc__ = (
        f"CAISO OASIS {query.queryname} (market run {query.market_run_id}), a zip of CSV or XML"
        f" reports: one LmpRecord per node and {query.minutes}-minute interval."
    )
    return parse


def _lmp_rows(
    report: Report,
    columns: tuple[int, ...],
    market_run: str,
    minutes: int,
    groups: dict[tuple[str, datetime, int], list[_Cell | None]],
    source: str,
) -> None:
    i_start, i_end, i_market, i_node, _, i_component, i_value = columns
    spans = Spans(report, source)
    revision = report.revision
    # What a row's times, market run and component say, checked once per distinct combination
    # (every node shares them): (interval start, slot of the component).
    context_of = itemgetter(i_start, i_end, i_market, i_component)
    contexts: dict[tuple[str, ...], tuple[datetime, int]] = {}
    for row_number, row in enumerate(report.rows, start=1):
        context_key = context_of(row)
        context = contexts.get(context_key)
        if context is None:
            context = contexts[context_key] = _lmp_context(
                context_key, columns, market_run, minutes, spans, report, source, row_number
            )
        start, slot = context
        key = (row[i_node], start, revision)
        group = groups.get(key)
        if group is None:
            group = groups[key] = [None, None, None, None, None]
        value = row[i_value]
        earlier = group[slot]
        if earlier is None:
            group[slot] = (value, row_number, row, report)
        elif earlier[0] != value:
            raise report.fail(
                source,
                f"two values of {report.header[i_component]} {context_key[3]} for {row[i_node]}"
                f" at {context_key[0]}: {earlier[0]} and {value}",
                row_number,
            )
        # else: the same row again, verbatim; kept once


def _lmp_context(
    key: tuple[str, ...],
    columns: tuple[int, ...],
    market_run: str,
    minutes: int,
    spans: Spans,
    report: Report,
    source: str,
    row: int,
) -> tuple[datetime, int]:
    start_text, end_text, run, code = key
    component = LMP_COMPONENTS.get(code)
    if component is None:
        raise report.fail(source, f"unknown {report.header[columns[5]]} {code!r}", row)
    if run != market_run:
        column = report.header[columns[2]]
        raise report.fail(source, f"{column} {run!r} where {market_run} was expected", row)
    start, length = spans(start_text, end_text, row)
    if length != minutes:
        raise report.fail(source, f"a {length}-minute interval where {minutes} was expected", row)
    return start, _SLOTS[component]


def _value(cell: _Cell, column: str, source: str) -> float:
    """The number in a component cell; ParseError naming the cell when it is not one."""
    return number(cell[0], source, cell[1], column, cell[3].where)


def _lmp_records(
    groups: dict[tuple[str, datetime, int], list[_Cell | None]],
    names: dict[Report, int],
    market: str,
    minutes: int,
    source: str,
) -> list[Record]:
    out: list[Record] = []
    types = {node: location_type(node) for node in {node for node, _, _ in groups}}
    for (node, start, revision), group in groups.items():
        total, energy, congestion, loss, ghg = group
        if total is None:
            _, row_number, _, report = next(cell for cell in group if cell is not None)
            raise report.fail(
                source,
                f"{node} at {start:%Y-%m-%dT%H:%MZ} has components but no LMP row",
                row_number,
            )
        _, row_number, row, report = total
        # The component values are kept beside the LMP row's own fields, under OASIS's names.
        extra: dict[str, str] = {}
        components: tuple[float | None, ...] = (None, None, None)
        if energy or congestion or loss:
            if energy is None or congestion is None or loss is None:
                name = (
                    "energy" if energy is None else "congestion" if congestion is None else "loss"
                )
                raise report.fail(
                    source,
                    f"{node} at {start:%Y-%m-%dT%H:%MZ} has no {name} component",
                    row_number,
                )
            components = (
                _value(energy, COMPONENT_NATIVE["energy"], source),
                _value(congestion, COMPONENT_NATIVE["congestion"], source),
                _value(loss, COMPONENT_NATIVE["loss"], source),
            )
            extra = {
                COMPONENT_NATIVE["energy"]: energy[0],
                COMPONENT_NATIVE["congestion"]: congestion[0],
                COMPONENT_NATIVE["loss"]: loss[0],
            }
        if ghg is not None:
            _value(ghg, COMPONENT_NATIVE["ghg"], source)
            extra[COMPONENT_NATIVE["ghg"]] = ghg[0]
        out.append(
            LmpRecord(
                ISO,
                market,
                node,
                row[names[report]] or None,
                types[node],
                start,
                minutes,
                _value(total, "LMP", source),
                components[0],
                components[1],
                components[2],
                revision,
                PUBLISH_TIME,
                source,
                row_number,
                NativeRow(report.header, row, extra),
            )
        )
    return out


# Ancillary services --------------------------------------------------------------------------


def parse_as_prices(data: bytes, source: str) -> Sequence[Record]:
    """CAISO OASIS PRC_AS (DAM, HASP) and PRC_INTVL_AS (RTM): one AsPriceRecord per AS region,
    type and interval. The price column is named MW; ANC_TYPE maps to the canonical product."""
    csv_names = (*RUN_COLUMNS, AS_TYPE, AS_REGION, DATA_ITEM, PRC_AS.value_column)
    fast = columnar.as_prices(data, source, csv_names)
    if fast is not None:
        return fast
    out: list[Record] = []
    seen: dict[tuple[object, ...], str] = {}
    xml_names = (*XML_RUN_COLUMNS, XML_DATA_ITEM, XML_RESOURCE, XML_DATA_ITEM, XML_VALUE)
    for report in read_reports(data, source):
        columns = report.columns(xml_names if report.xml else csv_names, source)
        i_start, i_end, i_market, i_type, i_region, i_item, i_value = columns
        spans = Spans(report, source)
        revision, header, where = report.revision, report.header, report.where
        value_column = header[i_value]
        for row_number, row in enumerate(report.rows, start=1):
            item = row[i_item]
            anc_type = AS_PRICE_ITEMS.get(item)
            if report.xml:
                if anc_type is None:
                    raise report.fail(source, f"unknown {header[i_item]} {item!r}", row_number)
            else:
                if row[i_type] not in AS_PRODUCTS:
                    raise report.fail(source, f"unknown {AS_TYPE} {row[i_type]!r}", row_number)
                if anc_type != row[i_type]:
                    raise report.fail(
                        source,
                        f"{DATA_ITEM} {item!r} is not the clearing price of"
                        f" {AS_TYPE} {row[i_type]}",
                        row_number,
                    )
            assert anc_type is not None
            start, minutes = spans(row[i_start], row[i_end], row_number)
            market = AS_MARKETS.get((row[i_market], minutes))
            if market is None:
                raise report.fail(
                    source,
                    f"{header[i_market]} {row[i_market]!r} with {minutes}-minute intervals"
                    " is not a known AS market",
                    row_number,
                )
            text = row[i_value]
            key = (market, row[i_region], anc_type, start, revision)
            earlier = seen.get(key)
            if earlier is not None:
                if earlier == text:
                    continue  # the same row again, verbatim; kept once
                raise report.fail(
                    source,
                    f"two prices for {row[i_region]} {anc_type} at {row[i_start]}",
                    row_number,
                )
            seen[key] = text
            out.append(
                AsPriceRecord(
                    ISO,
                    market,
                    start,
                    minutes,
                    AS_PRODUCTS[anc_type],
                    anc_type,
                    row[i_region],
                    number(text, source, row_number, value_column, where),
                    revision,
                    PUBLISH_TIME,
                    source,
                    row_number,
                    NativeRow(header, row),
                )
            )
    return out
