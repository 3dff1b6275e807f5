"""What the answers share: the `{"data": [...], "next_cursor": ...}` envelope, and times."""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

from pydantic import BaseModel, Field, WithJsonSchema

# Times are answered as the strings the read models give (ISO-8601 with `Z` or an offset),
# never re-parsed: the type documents the format without touching the value.
Time = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]

RowT = TypeVar("RowT", bound=BaseModel)


class Listing(BaseModel, Generic[RowT]):
    """Every row in one answer."""

    data: list[RowT]
    next_cursor: None = Field(description="Always null: the whole list comes in one answer.")


class Page(BaseModel, Generic[RowT]):
    """One page of rows in key order."""

    data: list[RowT]
    next_cursor: str | None = Field(
        description="Pass as `cursor` (with the same other parameters) for the next page; "
        "null on the last one."
    )
