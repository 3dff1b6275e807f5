"""A batch whose records name a schema id the worker has not seen waits for the registry
instead of failing; ids it knows need no registry at all."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client import REGISTRY

from schemas.catalog import Dataset, Iso, TopicCatalog
from schemas.contracts import ContractSet
from schemas.errors import DeserializationError, SchemaNotFoundError
from schemas.registry import RegistryClient
from schemas.serde import AvroSerde, frame
from streams.runtime import await_writer_schemas
from tests.unit.streams.factories import T0, raw_lmp

NOBODY = "http://127.0.0.1:1/apis/ccompat/v7"  # a closed port: the registry is down


def _serde() -> tuple[AvroSerde, bytes]:
    serde = AvroSerde(RegistryClient(NOBODY, timeout_s=0.5), ContractSet())
    spec = TopicCatalog().raw(Iso.PJM, Dataset.LMP_RT_5MIN)
    serde.preload(spec.subject, spec.value_schema, 1)
    known = serde.encoder(spec.subject, spec.value_schema)(raw_lmp("A", T0, 31.5))
    return serde, known


def _runs(*values: bytes) -> list[list[Any]]:
    return [[SimpleNamespace(value=v) for v in values]]


def _metric(name: str) -> float:
    value = REGISTRY.get_sample_value(name)
    return 0.0 if value is None else value


def test_known_schema_ids_need_no_registry() -> None:
    serde, known = _serde()
    asyncio.run(await_writer_schemas(serde, _runs(known, b"\x00", b"not avro at all")))
    assert serde.prefetch([known, b"", b"\x01\x00\x00\x00\x01abc"]) == 0  # bad headers: decode's


def test_an_unseen_schema_id_waits_for_the_registry_and_goes_on_once_it_answers() -> None:
    serde, known = _serde()
    contract = ContractSet().get("energy.optibid.raw.LmpReported")
    unseen = frame(7, contract.parsed, raw_lmp("B", T0, 30.0))
    waits = _metric("optibid_stream_registry_waits_total")

    async def wait_then_come_back() -> None:
        task = asyncio.ensure_future(await_writer_schemas(serde, _runs(known, unseen)))
        await asyncio.sleep(0.5)
        assert not task.done()  # still waiting: nothing of the batch is processed yet
        assert _metric("optibid_stream_registry_up") == 0
        # the registry is back and knows id 7
        serde.registry.schema_by_id = lambda schema_id: contract.text  # type: ignore[method-assign]
        await asyncio.wait_for(task, 10)

    asyncio.run(wait_then_come_back())
    assert _metric("optibid_stream_registry_waits_total") > waits
    assert _metric("optibid_stream_registry_up") == 1
    assert serde.decode(unseen)[1]["location_id"] == "B"


def test_an_id_nobody_registered_is_left_to_decode_as_bad_data() -> None:
    serde, _ = _serde()
    contract = ContractSet().get("energy.optibid.raw.LmpReported")
    unknown = frame(99, contract.parsed, raw_lmp("C", T0, 30.0))
    serde.registry.schema_by_id = _not_found  # type: ignore[method-assign]
    asyncio.run(await_writer_schemas(serde, _runs(unknown)))
    with pytest.raises(DeserializationError, match="unknown schema id 99"):
        serde.decode(unknown)


def _not_found(schema_id: int) -> str:
    raise SchemaNotFoundError(f"no schema with id {schema_id}")
