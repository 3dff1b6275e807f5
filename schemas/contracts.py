"""The Avro contracts: `.avsc` files in `schemas/avro/` are the single source of truth.

Nothing in Python restates a schema; code looks schemas up by their Avro full name
(`energy.optibid.market.LmpPublished`), which is the event's identity.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import fastavro

from schemas.errors import SchemaNotFoundError

AVRO_DIR = Path(__file__).resolve().parent / "avro"

ENVELOPE_FIELDS = ("event_id", "occurred_at_utc", "recorded_at_utc", "source", "schema_version")


@dataclass(frozen=True)
class Contract:
    """One Avro schema as written in its `.avsc` file."""

    full_name: str
    path: Path
    definition: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.definition["name"])

    @property
    def text(self) -> str:
        """The schema as compact JSON, the form registered with the schema registry."""
        return json.dumps(self.definition, separators=(",", ":"), sort_keys=False)

    @cached_property
    def parsed(self) -> Any:
        """The schema parsed by fastavro, ready for (de)serialisation."""
        return fastavro.parse_schema(self.definition)

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(str(f["name"]) for f in self.definition["fields"])


def _full_name(definition: dict[str, Any]) -> str:
    namespace = definition.get("namespace")
    return f"{namespace}.{definition['name']}" if namespace else str(definition["name"])


def load_contracts(directory: Path = AVRO_DIR) -> dict[str, Contract]:
    """Read every `.avsc` under `directory`, keyed by Avro full name."""
    contracts: dict[str, Contract] = {}
    for path in sorted(directory.glob("*.avsc")):
        definition = json.loads(path.read_text(encoding="utf-8"))
        full_name = _full_name(definition)
        if full_name in contracts:
            first = contracts[full_name].path.name
            raise ValueError(f"{path.name}: {full_name} is already defined in {first}")
        contracts[full_name] = Contract(full_name, path, definition)
    return contracts


class ContractSet:
    """All contracts of the project, looked up by full name."""

    def __init__(self, directory: Path = AVRO_DIR) -> None:
        self._contracts = load_contracts(directory)

    def __iter__(self) -> Iterator[Contract]:
        return iter(self._contracts.values())

    def __len__(self) -> int:
        return len(self._contracts)

    def get(self, full_name: str) -> Contract:
        try:
            return self._contracts[full_name]
        except KeyError:
            known = ", ".join(sorted(self._contracts))
            raise SchemaNotFoundError(f"no schema named {full_name!r}; known: {known}") from None

    def names(self) -> list[str]:
        return sorted(self._contracts)
