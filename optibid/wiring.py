"""Builds the objects each role needs from Settings (the only place that reads them)."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from connectors.runtime import ConnectorRuntime
from connectors.sources import Source
from optibid.settings import Settings
from schemas.catalog import Dataset, Iso, TopicCatalog
from schemas.contracts import ContractSet
from schemas.registration import register_all
from schemas.registry import RegistryClient
from schemas.serde import AvroSerde
from schemas.topics import ensure_topics


def prepare_contracts(settings: Settings) -> TopicCatalog:
    """Create the catalog's topics and register its schemas (both idempotent)."""
    catalog = TopicCatalog(settings.topic_prefix)
    ensure_topics(settings.bootstrap_servers, catalog)
    with RegistryClient(settings.schema_registry_url) as registry:
        register_all(registry, catalog, ContractSet())
    return catalog


@contextmanager
def connector_runtime(settings: Settings, iso: Iso, dataset: Dataset) -> Iterator[ConnectorRuntime]:
    catalog = prepare_contracts(settings)
    with RegistryClient(settings.schema_registry_url) as registry:
        runtime = ConnectorRuntime(
            settings.bootstrap_servers, AvroSerde(registry), catalog, iso, dataset
        )
        try:
            yield runtime
        finally:
            runtime.close()


def live_source(settings: Settings, iso: Iso) -> Source:
    """The ISO's live client, with its credentials from settings."""
    module = importlib.import_module(f"connectors.{iso.value}.client")
    factory: Any = module.from_credentials
    credentials: dict[str, Any] = {}
    if iso is Iso.PJM:
        credentials = {"api_key": settings.pjm_api_key}
    elif iso is Iso.ERCOT:
        credentials = {
            "username": settings.ercot_api_username,
            "password": settings.ercot_api_password,
            "subscription_key": settings.ercot_api_subscription_key,
        }
    source: Source = factory(**credentials)
    return source
