"""ERCOT payloads as report documents: a bare CSV, a zip holding one (an MIS or API download),
or a zip of such zips (a bulk archive download). Recognised by content, never by name.

Each document carries its posting time, read from its own name inside the zip or, failing that,
from the name of the response that held it; the revision of its rows is that posting time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from connectors.ercot.timelabels import posted_utc
from connectors.errors import ParseError
from connectors.tabular import load_json, open_zip, reject_unexpected, sniff
from schemas.timeutil import to_micros

_EMPTY_ZIP = b"PK\x05\x06"  # a zip's end record, first when it has no entries


@dataclass(frozen=True, slots=True)
class Document:
    label: str  # names it in errors: the source, plus "!member" for a document inside a zip
    data: bytes
    posted: datetime | None

    @property
    def revision(self) -> int:
        """The posting time in epoch microseconds; 0 when neither the payload nor its name
        says when it was posted, so that any dated posting of the same rows outranks it."""
        return 0 if self.posted is None else to_micros(self.posted)


def csv_documents(data: bytes, source: str) -> list[Document]:
    """The CSV documents of a payload, or a ParseError saying what arrived instead."""
    if sniff(data) == "json":
        raise ParseError(source, error_document(data, source))
    if data.startswith(_EMPTY_ZIP):  # sniff knows zips by their first entry; this has none
        raise ParseError(source, "the zip holds no CSV document")
    kind = reject_unexpected(data, source, ("zip", "csv"))
    if kind == "csv":
        return [Document(source, data, _posted(source, source, None))]
    found: list[Document] = []
    _unzip(data, source, _posted(source, source, None), found)
    if not found:
        raise ParseError(source, "the zip holds no CSV document")
    return found


def _unzip(data: bytes, label: str, posted: datetime | None, found: list[Document]) -> None:
    for name, body in open_zip(data, label):
        member = f"{label}!{name}"
        kind = "zip" if body.startswith(_EMPTY_ZIP) else sniff(body)
        own = _posted(name, member, posted)
        if kind == "zip":
            _unzip(body, member, own, found)
        elif kind == "csv":
            found.append(Document(member, body, own))
        elif kind == "xml":
            raise ParseError(member, "an XML document: the report's _xml variant, not its _csv")
        elif kind == "empty":
            raise ParseError(member, "an empty document")
        elif kind == "json":
            raise ParseError(member, error_document(body, member))
        else:
            raise ParseError(member, f"a {kind} document where a CSV was expected")


def _posted(name: str, label: str, fallback: datetime | None) -> datetime | None:
    try:
        return posted_utc(name) or fallback
    except ValueError as exc:
        raise ParseError(label, str(exc)) from None


def error_document(data: bytes, source: str) -> str:
    """What a JSON payload says, where report data was expected (the API answers errors in JSON:
    `{"statusCode": 401, "message": "Access denied ..."}`)."""
    body = load_json(data, source)
    if isinstance(body, dict):
        status = next((body[k] for k in ("statusCode", "status", "code") if k in body), None)
        message = next(
            (body[k] for k in ("message", "error_description", "error") if k in body), None
        )
        if status is not None or message is not None:
            return f"an error document instead of data (status {status}): {str(message)[:200]!r}"
    return "a JSON document where a zip or CSV report was expected"
