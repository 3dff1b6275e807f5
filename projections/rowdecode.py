"""A reader specialised for one flat Avro record: framed bytes straight to a table row.

fastavro's generic reader walks the schema for every value and builds a dict the fold then
turns into a tuple; for the market events that is most of a projector's time. A record whose
fields are all primitives (optionally `["null", primitive]`, timestamps as `timestamp-micros`)
is read far faster by straight-line code written for it once: this module writes that code
from the contract's schema and compiles it, reading the fields in the schema's order and
returning the table's columns in the table's order.

It is a fast path only. The projector uses it for a value whose 5-byte Confluent header names
a writer schema that is exactly the contract (no resolution needed) and falls back to the
generic reader for anything else: another schema id, or any value this reader does not take
cleanly to its last byte (it raises one of `ROW_DECODE_ERRORS`). Values come out as fastavro
gives them: `str`, `int`, `float`, `bool`, `None`, and UTC-aware datetimes for timestamps.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from projections.folds import Row

RowDecoder = Callable[[bytes], Row]

# What a value the fast reader cannot take raises; the generic reader then decides.
ROW_DECODE_ERRORS: tuple[type[Exception], ...] = (
    IndexError,
    ValueError,  # UnicodeDecodeError among them
    OverflowError,
    struct.error,
)

_PRIMITIVES = frozenset({"string", "int", "long", "double", "boolean", "timestamp"})
_TIMESTAMP_CACHE_SIZE = 4096
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _kind(avro_type: Any) -> tuple[str, bool] | None:
    """(primitive kind, nullable) of a field type this reader handles, else None."""
    if isinstance(avro_type, list):
        if len(avro_type) == 2 and avro_type[0] == "null":
            inner = _kind(avro_type[1])
            return (inner[0], True) if inner is not None and not inner[1] else None
        return None
    if isinstance(avro_type, dict):
        if avro_type.get("logicalType") == "timestamp-micros" and avro_type.get("type") == "long":
            return "timestamp", False
        return _kind(avro_type.get("type")) if set(avro_type) == {"type"} else None
    return (avro_type, False) if avro_type in _PRIMITIVES - {"timestamp"} else None


def _varint(target: str, indent: str) -> list[str]:
    """Lines reading one zigzag varint at `pos` into `target`; one byte is the common case."""
    return [
        f"{indent}b = buf[pos]",
        f"{indent}pos += 1",
        f"{indent}if b < 128:",
        f"{indent}    {target} = (b >> 1) ^ -(b & 1)",
        f"{indent}else:",
        f"{indent}    n = b & 127",
        f"{indent}    shift = 7",
        f"{indent}    while True:",
        f"{indent}        b = buf[pos]",
        f"{indent}        pos += 1",
        f"{indent}        n |= (b & 127) << shift",
        f"{indent}        if b < 128:",
        f"{indent}            break",
        f"{indent}        shift += 7",
        f"{indent}        if shift > 63:",
        f"{indent}            raise ValueError('varint longer than 10 bytes')",
        f"{indent}    {target} = (n >> 1) ^ -(n & 1)",
    ]


def _value(kind: str, target: str, indent: str) -> list[str]:
    if kind in ("int", "long"):
        return _varint(target, indent)
    if kind == "double":
        return [f"{indent}{target} = unpack_double(buf, pos)[0]", f"{indent}pos += 8"]
    if kind == "boolean":
        return [
            f"{indent}b = buf[pos]",
            f"{indent}pos += 1",
            f"{indent}if b > 1:",
            f"{indent}    raise ValueError('boolean byte is neither 0 nor 1')",
            f"{indent}{target} = b == 1",
        ]
    if kind == "string":
        return [
            *_varint("size", indent),
            f"{indent}if size < 0:",
            f"{indent}    raise ValueError('negative string length')",
            f"{indent}end = pos + size",
            f"{indent}if end > length:",
            f"{indent}    raise IndexError('string runs past the value')",
            f"{indent}{target} = str(buf[pos:end], 'utf-8')",
            f"{indent}pos = end",
        ]
    # timestamp-micros: the same instants recur (interval starts, run times), so the datetime
    # of the varint's bytes is remembered; a varint is whole within the 10 bytes at `pos`.
    return [
        f"{indent}window = buf[pos : pos + 10]",
        f"{indent}known = timestamps.get(window)",
        f"{indent}if known is None:",
        f"{indent}    start = pos",
        *_varint("micros", indent + "    "),
        f"{indent}    known = (EPOCH + timedelta(microseconds=micros), pos - start)",
        f"{indent}    if len(timestamps) >= CACHE_SIZE:",
        f"{indent}        timestamps.clear()",
        f"{indent}    timestamps[window] = known",
        f"{indent}    pos = start",
        f"{indent}{target} = known[0]",
        f"{indent}pos += known[1]",
    ]


def row_decoder(schema_text: str, columns: Sequence[str], header: bytes) -> RowDecoder | None:
    """A reader of values framed with `header` (magic byte and schema id) written with the flat
    record schema `schema_text`, returning `columns` (field names) in order; None when the
    schema has a field this reader does not handle or lacks one of `columns`."""
    definition = json.loads(schema_text)
    if not isinstance(definition, dict) or definition.get("type") != "record":
        return None
    fields: list[tuple[str, str, bool]] = []
    for field in definition.get("fields", []):
        handled = _kind(field.get("type"))
        if handled is None:
            return None
        fields.append((field["name"], *handled))
    names = [name for name, _, _ in fields]
    if any(column not in names for column in columns):
        return None
    variables = {name: f"v{i}" for i, name in enumerate(names)}
    body = [
        "def decode(buf):",
        "    length = len(buf)",
        "    if buf[:HEADER_SIZE] != HEADER:",
        "        raise ValueError('another schema id')",
        "    pos = HEADER_SIZE",
    ]
    for name, kind, nullable in fields:
        target = variables[name]
        if nullable:
            body += [
                *_varint("branch", "    "),
                "    if branch == 0:",
                f"        {target} = None",
                "    elif branch == 1:",
                *_value(kind, target, "        "),
                "    else:",
                "        raise ValueError('union branch out of range')",
            ]
        else:
            body += _value(kind, target, "    ")
    body += [
        "    if pos != length:",
        "        raise ValueError('bytes left after the record')",
        f"    return ({''.join(f'{variables[c]}, ' for c in columns)})",
    ]
    namespace: dict[str, Any] = {
        "HEADER": header,
        "HEADER_SIZE": len(header),
        "EPOCH": _EPOCH,
        "timedelta": timedelta,
        "unpack_double": struct.Struct("<d").unpack_from,
        "timestamps": {},
        "CACHE_SIZE": _TIMESTAMP_CACHE_SIZE,
    }
    # the source is built above from the field kinds alone; names never reach it
    exec(compile("\n".join(body), f"<row decoder {definition.get('name')}>", "exec"), namespace)  # noqa: S102
    decoder: RowDecoder = namespace["decode"]
    return decoder
