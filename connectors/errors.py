"""The one exception root of the connectors package."""

from __future__ import annotations


class ConnectorError(Exception):
    """A connector could not fetch, parse or publish."""


class ParseError(ConnectorError):
    """Bytes the parser does not recognise. Names the file, the row (when known) and the problem.

    A parser raises this instead of returning a partial result: one bad row rejects the file.
    """

    def __init__(self, source: str, problem: str, row: int | None = None) -> None:
        where = f"{source}, row {row}" if row is not None else source
        super().__init__(f"{where}: {problem}")
        self.source = source
        self.row = row
        self.problem = problem


class NoDataError(ConnectorError):
    """The ISO answered that it has no data for the request (e.g. CAISO OASIS ERR_CODE 1000).

    Not an empty success and not a crash: callers record it (a backfill outcome EMPTY).
    """


class FetchError(ConnectorError):
    """The ISO could not be reached or kept failing after the retry policy gave up."""
