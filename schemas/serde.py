"""Avro values in the Confluent wire format: magic byte 0, 4-byte big-endian schema id, Avro body.

Writers use the schema id the registry assigned to the contract; readers fetch the writer's
schema by id (cached) and resolve it against the reader's contract, so older records decode
with today's code.
"""

from __future__ import annotations

import io
import json
import struct
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import fastavro

from schemas.contracts import Contract, ContractSet
from schemas.errors import DeserializationError, SchemaNotFoundError
from schemas.registry import RegistryClient, canonical

MAGIC = 0
_HEADER = struct.Struct(">bI")

Decoded = dict[str, Any]  # an event as the Avro reader returns it
Encoder = Callable[[Mapping[str, Any]], bytes]


def frame(schema_id: int, parsed_schema: Any, record: Mapping[str, Any]) -> bytes:
    buffer = io.BytesIO()
    buffer.write(_HEADER.pack(MAGIC, schema_id))
    fastavro.schemaless_writer(buffer, parsed_schema, record)
    return buffer.getvalue()


def schema_id_of(data: bytes) -> int:
    """The registry id in a Confluent-framed value."""
    if len(data) < _HEADER.size:
        raise DeserializationError(f"value of {len(data)} bytes is shorter than the 5-byte header")
    magic, schema_id = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise DeserializationError(
            f"value starts with byte {magic}, not the Confluent magic byte 0"
        )
    return int(schema_id)


class AvroSerde:
    """Encodes contracts to Confluent-framed Avro and decodes any registered writer schema."""

    def __init__(self, registry: RegistryClient, contracts: ContractSet | None = None) -> None:
        self.registry = registry
        self.contracts = contracts or ContractSet()
        self._ids: dict[tuple[str, str], int] = {}
        self._writers: dict[int, tuple[str, Any, Any]] = {}

    def schema_id(self, subject: str, contract: Contract) -> int:
        """The registry id of `contract` under `subject`, registering it on first use."""
        key = (subject, contract.full_name)
        if key not in self._ids:
            self._ids[key] = self.registry.register(subject, contract.text)
        return self._ids[key]

    def preload(self, subject: str, full_name: str, schema_id: int) -> None:
        """Use a schema id known beforehand (registered elsewhere) without asking the registry."""
        contract = self.contracts.get(full_name)
        self._ids[subject, full_name] = schema_id
        self._writers[schema_id] = (full_name, contract.parsed, None)

    def encoder(self, subject: str, full_name: str) -> Encoder:
        """A function turning a record of `full_name` into framed bytes for `subject`."""
        contract = self.contracts.get(full_name)
        schema_id = self.schema_id(subject, contract)
        parsed = contract.parsed

        def encode(record: Mapping[str, Any]) -> bytes:
            try:
                return frame(schema_id, parsed, record)
            except (ValueError, TypeError, KeyError, AttributeError) as exc:
                raise DeserializationError(
                    f"record does not fit {full_name}: {type(exc).__name__}: {exc}"
                ) from exc

        return encode

    def _writer(self, schema_id: int) -> tuple[str, Any, Any]:
        """(full name, writer schema, reader schema or None when no resolution is needed)."""
        if schema_id not in self._writers:
            text = self.registry.schema_by_id(schema_id)
            definition = json.loads(text)
            namespace = definition.get("namespace")
            name = f"{namespace}.{definition['name']}" if namespace else definition["name"]
            writer = fastavro.parse_schema(definition)
            reader = None
            try:
                contract = self.contracts.get(name)
            except SchemaNotFoundError:
                contract = None
            if contract is not None and canonical(contract.text) != canonical(text):
                reader = contract.parsed  # an older or newer version: resolve to ours
            self._writers[schema_id] = (name, writer, reader)
        return self._writers[schema_id]

    def prefetch(self, values: Iterable[bytes | None]) -> int:
        """Fetch the writer schema of every framed value whose schema id is not known yet, so
        that decoding them needs no registry; returns how many were fetched. Raises
        RegistryUnavailableError when the registry does not answer. Values with a bad header
        or an id nobody registered are left for `decode` to reject as bad data."""
        fetched = 0
        for data in values:
            if not data or len(data) < _HEADER.size:
                continue
            try:
                schema_id = schema_id_of(data)
            except DeserializationError:
                continue
            if schema_id in self._writers:
                continue
            try:
                self._writer(schema_id)
            except SchemaNotFoundError:
                continue
            fetched += 1
        return fetched

    def is_contract(self, schema_id: int) -> bool:
        """Whether writer schema `schema_id` is exactly our contract of its name, so its records
        need no resolution: what a reader specialised for the contract may rely on."""
        full_name, _, reader = self._writer(schema_id)
        try:
            self.contracts.get(full_name)
        except SchemaNotFoundError:
            return False
        return reader is None

    def decode(self, data: bytes) -> tuple[str, Decoded]:
        """(Avro full name, record) of a framed value; resolved to our contract when we have it."""
        schema_id = schema_id_of(data)
        try:
            full_name, writer, reader = self._writer(schema_id)
        except SchemaNotFoundError as exc:
            # the bytes name a schema nobody registered: bad data, not a registry outage
            raise DeserializationError(f"value names unknown schema id {schema_id}: {exc}") from exc
        try:
            record = fastavro.schemaless_reader(io.BytesIO(data[_HEADER.size :]), writer, reader)
        except (EOFError, ValueError, TypeError, IndexError, UnicodeDecodeError) as exc:
            raise DeserializationError(
                f"value with schema id {schema_id} ({full_name}) does not decode:"
                f" {type(exc).__name__}: {exc}"
            ) from exc
        if not isinstance(record, dict):
            raise DeserializationError(f"schema id {schema_id} ({full_name}) is not a record")
        return full_name, record
