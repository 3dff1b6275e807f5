"""Registers every topic's value schema under BACKWARD compatibility, and guards evolution.

`schemas/avro/released.json` records each released version of every schema. A change to an
`.avsc` file must be backward compatible with every released version of it (checked by the
real registry in the test suite); `optibid schemas release` records the current versions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from schemas.catalog import TopicCatalog
from schemas.contracts import AVRO_DIR, ContractSet
from schemas.registry import Compatibility, RegistryClient, canonical

RELEASED = AVRO_DIR / "released.json"
COMPATIBILITY: Compatibility = "BACKWARD"


@dataclass(frozen=True)
class Registered:
    subject: str
    full_name: str
    schema_id: int


def register_all(
    registry: RegistryClient, catalog: TopicCatalog, contracts: ContractSet
) -> list[Registered]:
    """Set BACKWARD on each topic's subject and register its value schema (idempotent)."""
    done: list[Registered] = []
    for topic in catalog:
        contract = contracts.get(topic.value_schema)
        registry.set_compatibility(topic.subject, COMPATIBILITY)
        schema_id = registry.register(topic.subject, contract.text)
        done.append(Registered(topic.subject, contract.full_name, schema_id))
    return done


def load_released(path: Path = RELEASED) -> dict[str, list[str]]:
    """Full name -> released schema texts, oldest first."""
    if not path.exists():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    return {str(k): [json.dumps(v, separators=(",", ":")) for v in vs] for k, vs in data.items()}


def release(contracts: ContractSet, path: Path = RELEASED) -> list[str]:
    """Append each schema whose current text differs from its last released one; returns them."""
    released = load_released(path)
    changed: list[str] = []
    for contract in contracts:
        versions = released.setdefault(contract.full_name, [])
        if not versions or canonical(versions[-1]) != canonical(contract.text):
            versions.append(contract.text)
            changed.append(contract.full_name)
    data = {name: [json.loads(v) for v in vs] for name, vs in sorted(released.items())}
    path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    return changed


def unreleased_changes(contracts: ContractSet, path: Path = RELEASED) -> list[str]:
    """Schemas whose current text is not their last released version."""
    released = load_released(path)
    return [
        c.full_name
        for c in contracts
        if c.full_name not in released or canonical(released[c.full_name][-1]) != canonical(c.text)
    ]


def check_against_released(
    registry: RegistryClient, contracts: ContractSet, subject_prefix: str, path: Path = RELEASED
) -> dict[str, bool]:
    """Whether each current schema can follow all its released versions under BACKWARD.

    Registers the released versions under `<subject_prefix><full name>` (a scratch subject)
    and asks the registry to judge the current schema against them.
    """
    released = load_released(path)
    verdict: dict[str, bool] = {}
    for contract in contracts:
        subject = f"{subject_prefix}{contract.full_name}"
        registry.set_compatibility(subject, "BACKWARD_TRANSITIVE")
        for text in released.get(contract.full_name, []):
            registry.register(subject, text)
        verdict[contract.full_name] = registry.is_compatible(subject, contract.text)
    return verdict
