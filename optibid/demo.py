"""The demo: the local stack, topics and schemas, and market data round-tripped through them."""

from __future__ import annotations

import math
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition
from rich.console import Console
from rich.table import Table

from optibid import stack
from optibid.settings import Settings
from schemas.catalog import Dataset, Iso, TopicCatalog
from schemas.contracts import ContractSet
from schemas.registration import register_all
from schemas.registry import RegistryClient
from schemas.serde import AvroSerde
from schemas.topics import ensure_topics

HUBS = (("51288", "WESTERN HUB"), ("51217", "AEP-DAYTON HUB"), ("116013751", "N ILLINOIS HUB"))
NAMESPACE = uuid.UUID("6f1d3c1e-6a43-4c55-9a53-0f3b7d9c2a11")


def sample_day(day: datetime, run_id: str) -> list[dict[str, Any]]:
    """One operating hour of 5-minute prices at three PJM hubs, shaped like a real day."""
    now = datetime.now(UTC)
    records = []
    for row, (index, (location_id, name)) in enumerate(
        ((i, h) for i in range(12) for h in HUBS), start=1
    ):
        start = day + timedelta(minutes=5 * index)
        energy = 30.0 + 12.0 * math.sin(index / 3)
        congestion = 1.5 * (HUBS.index((location_id, name)) - 1)
        loss = 0.4
        records.append(
            {
                "event_id": str(uuid.uuid5(NAMESPACE, f"PJM|RT_5MIN|{location_id}|{start}|1")),
                "occurred_at_utc": start + timedelta(minutes=5),
                "recorded_at_utc": now,
                "source": "demo",
                "schema_version": 1,
                "iso": "PJM",
                "dataset": Dataset.LMP_RT_5MIN.value,
                "market": "RT_5MIN",
                "location_id": location_id,
                "location_name": name,
                "location_type": "HUB",
                "interval_start_utc": start,
                "interval_minutes": 5,
                "lmp_usd_per_mwh": round(energy + congestion + loss, 5),
                "energy_usd_per_mwh": round(energy, 5),
                "congestion_usd_per_mwh": congestion,
                "loss_usd_per_mwh": loss,
                "revision": 1,
                "revision_kind": "VERSION",
                "source_file": "demo",
                "source_row": row,
                "run_id": run_id,
                "native_fields": {},
            }
        )
    return records


def run_demo(settings: Settings, console: Console) -> None:
    began = time.monotonic()
    console.rule("local stack")
    stack.up(settings, lambda n, o, s: console.print(f"  {n:<9} {o:<8} {s:6.1f} s"))
    catalog = TopicCatalog(settings.topic_prefix)
    created = ensure_topics(settings.bootstrap_servers, catalog)
    console.print(f"  topics: {len(created)} created, {len(catalog)} in the catalog")
    with RegistryClient(settings.schema_registry_url) as registry:
        registered = register_all(registry, catalog, ContractSet())
        console.print(f"  schemas: {len(registered)} subjects registered under BACKWARD")
        serde = AvroSerde(registry)
        topic = catalog.raw(Iso.PJM, Dataset.LMP_RT_5MIN)
        encode = serde.encoder(topic.subject, topic.value_schema)
        run_id = str(uuid.uuid4())
        day = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
        records = sample_day(day, run_id)
        producer = Producer(
            {"bootstrap.servers": settings.bootstrap_servers, "enable.idempotence": True}
        )
        offsets: dict[int, int] = {}

        def delivered(err: Any, msg: Any) -> None:
            if err is not None:
                raise RuntimeError(f"delivery to {topic.name} failed: {err}")
            offsets.setdefault(msg.partition(), msg.offset())

        for record in records:
            key = f"PJM|RT_5MIN|{record['location_id']}"
            producer.produce(topic.name, encode(record), key.encode(), on_delivery=delivered)
        producer.flush(30)
        consumer = Consumer(
            {
                "bootstrap.servers": settings.bootstrap_servers,
                "group.id": f"demo-{run_id}",
                "enable.auto.commit": False,
            }
        )
        consumer.assign([TopicPartition(topic.name, p, o) for p, o in offsets.items()])
        back: list[dict[str, Any]] = []
        deadline = time.monotonic() + 30
        while len(back) < len(records) and time.monotonic() < deadline:
            msg = consumer.poll(1)
            value = None if msg is None or msg.error() else msg.value()
            if value is None:
                continue
            _, record = serde.decode(value)
            if record["run_id"] == run_id:
                back.append(record)
        consumer.close()
    console.rule(f"round trip through {topic.name}")
    table = Table("hub", "intervals", "min LMP $/MWh", "max LMP $/MWh")
    for location_id, name in HUBS:
        prices = [r["lmp_usd_per_mwh"] for r in back if r["location_id"] == location_id]
        table.add_row(name, str(len(prices)), f"{min(prices):.2f}", f"{max(prices):.2f}")
    console.print(table)
    if len(back) != len(records):
        raise RuntimeError(f"published {len(records)} records, read back {len(back)}")
    console.print(
        f"{len(records)} records published and read back equal in {time.monotonic() - began:.1f} s."
        " Stop the stack with `optibid stack down`."
    )
