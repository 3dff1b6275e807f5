"""Which parser reads which (ISO, dataset), and parsing by name from the CLI."""

from __future__ import annotations

import gc
import importlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import wraps

from connectors.records import Record
from schemas.catalog import ISO_DATASETS, Dataset, Iso

Parser = Callable[[bytes, str], Sequence[Record]]
"""A pure function from the raw bytes of one response (and its name) to typed records.

Contract: times are tz-aware UTC interval starts; nothing is dropped silently: input the parser
does not recognise raises connectors.errors.ParseError naming the file, row and problem.
"""


@contextmanager
def no_collection() -> Iterator[None]:
    """The cyclic garbage collector paused while records are built: building a record or two
    per row would otherwise start a collection every few hundred allocations, each walking the
    records built so far (records form no reference cycles, so nothing is left for the
    collector to find)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def collector_paused(parse: Parser) -> Parser:
    """`parse` run with the collector paused (see no_collection)."""

    @wraps(parse)
    def run(data: bytes, source: str) -> Sequence[Record]:
        with no_collection():
            return parse(data, source)

    return run


def parsers(iso: Iso) -> dict[Dataset, Parser]:
    module = importlib.import_module(f"connectors.{iso.value}.parse")
    table: dict[Dataset, Parser] = module.PARSERS
    return table


def parser_for(iso: Iso, dataset: Dataset) -> Parser:
    if dataset not in ISO_DATASETS[iso]:
        known = ", ".join(d.value for d in ISO_DATASETS[iso])
        raise KeyError(f"{iso.value} has no dataset {dataset.value}; it has {known}")
    return parsers(iso)[dataset]


def parse(iso: Iso, dataset: Dataset, data: bytes, source: str) -> Sequence[Record]:
    return parser_for(iso, dataset)(data, source)
