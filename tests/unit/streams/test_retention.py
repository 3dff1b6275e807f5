"""The revisions table keeps a natural key for a retention period, in event time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.catalog import Dataset, Iso, TopicCatalog
from schemas.contracts import ContractSet
from schemas.registry import RegistryClient
from schemas.serde import AvroSerde
from streams.processor import MarketProcessor, RevisionState
from tests.unit.streams.factories import T0, raw_lmp

NOW = datetime(2026, 1, 1, tzinfo=UTC)  # wall clock: irrelevant to retention, which is event time


def processor() -> tuple[MarketProcessor, Any]:
    catalog = TopicCatalog()
    serde = AvroSerde(RegistryClient("http://127.0.0.1:1/apis/ccompat/v7"), ContractSet())
    for number, topic in enumerate(catalog, start=1):
        serde.preload(topic.subject, topic.value_schema, number)
    spec = catalog.raw(Iso.PJM, Dataset.LMP_DA_HOURLY)
    encode = serde.encoder(spec.subject, spec.value_schema)
    proc = MarketProcessor(
        catalog, serde, retention=timedelta(days=2), expire_every=timedelta(hours=1)
    )
    return proc, (spec.name, encode)


def da(location: str, start: datetime, revision: int = 1) -> dict[str, Any]:
    return raw_lmp(
        location, start, 40.0, revision=revision, dataset="lmp_da_hourly",
        market="DA_HOURLY", minutes=60,
    )  # fmt: skip


def test_keys_older_than_retention_behind_the_newest_interval_are_dropped() -> None:
    proc, (topic, encode) = processor()
    latest: dict[str, Any] = {}
    locations: dict[str, Any] = {}

    def feed(record: dict[str, Any], partition: int, offset: int, now: datetime) -> list[str]:
        outs = proc.process(
            topic, partition, offset, b"k", encode(record), latest, locations,
            now=now + timedelta(days=800),  # far past the data: event time decides
        )  # fmt: skip
        return [o.topic.name for o in outs]

    feed(da("A", T0), 0, 1, NOW)
    feed(da("B", T0), 1, 1, NOW)  # partition 1: its own horizon
    feed(da("A", T0 + timedelta(days=3)), 0, 2, NOW + timedelta(minutes=10))
    assert len(latest) == 3  # an hour has not passed: nothing expires yet
    # an hour later the next record of partition 0 runs the expiry first:
    # newest interval there is T0+3d, horizon T0+1d, so A@T0 goes; B@T0 (partition 1) stays
    feed(da("A", T0 + timedelta(days=3, hours=1)), 0, 3, NOW + timedelta(hours=1))
    assert sorted(k.split("|")[3] + "@" + k.rsplit("|", 1)[1][:13] for k in latest) == [
        "A@2024-11-06T04",
        "A@2024-11-06T05",
        "B@2024-11-03T04",
    ]
    assert set(proc.known) == set(latest)
    # a re-fetch of the dropped interval is new again (downstream upserts absorb it)...
    assert "core.market.lmp" in feed(da("A", T0), 0, 4, NOW + timedelta(hours=1, minutes=1))
    # ...while a re-fetch of a retained one is still a duplicate
    assert feed(da("B", T0), 1, 5, NOW + timedelta(hours=1, minutes=2)) == []


def test_a_fast_replay_keeps_the_mirror_within_the_retention_in_event_time() -> None:
    """Thirty days of one location replayed within a minute of wall-clock time: the wall-clock
    hourly pass never comes, the event-time pass (every eighth of the retention) keeps the
    mirror within 2 days + 6 hours of hourly intervals."""
    proc, (topic, encode) = processor()
    latest: dict[str, Any] = {}
    largest = 0
    for hour in range(30 * 24):
        record = encode(da("A", T0 + timedelta(hours=hour)))
        now = NOW + timedelta(seconds=hour / 12)  # the whole replay within a minute
        proc.process(topic, 0, hour, b"k", record, latest, {}, now=now)
        largest = max(largest, len(latest))
    assert largest <= 2 * 24 + 6 + 1
    assert set(proc.known) == set(latest)
    oldest = min(datetime.fromisoformat(k.rsplit("|", 1)[1]) for k in latest)
    assert oldest >= T0 + timedelta(days=30) - timedelta(days=2, hours=7)


def test_after_a_rebalance_the_mirror_is_read_again_from_the_tables() -> None:
    proc, (topic, encode) = processor()
    record = encode(da("A", T0))
    restored: dict[str, Any] = {}
    seen: dict[str, Any] = {}
    first = proc.process(topic, 0, 1, b"k", record, restored, seen, now=NOW)
    assert first  # new: published
    # the partition moves to another worker, which restores the table from its changelog
    elsewhere, _ = processor()
    elsewhere.process(topic, 1, 1, b"k", encode(da("B", T0)), {}, {}, now=NOW)  # loaded, empty
    elsewhere.unload()  # rebalance complete: the restored table now holds partition 0's keys
    assert elsewhere.process(topic, 0, 2, b"k", record, dict(restored), dict(seen), now=NOW) == []


def test_revision_state_reads_the_tables_lists_by_name_old_shape_included() -> None:
    state = RevisionState.of([3, "d", "raw.pjm.lmp_rt_5min:4:17", 2, "PJM|RT_5MIN|A", 5])
    assert state is not None
    assert (state.topic, state.partition, state.supersedes, state.tracked) == (
        "raw.pjm.lmp_rt_5min",
        4,
        2,
        True,
    )
    assert state.stored() == [3, "d", "raw.pjm.lmp_rt_5min:4:17", 2, "PJM|RT_5MIN|A", 5]
    older = RevisionState.of([3, "d", "raw.pjm.lmp_rt_5min:4:17", None])  # before series keys
    assert older is not None
    assert (older.revision, older.tracked) == (3, False)  # dedupes, rebuilds no tracker
    assert RevisionState.of(None) is None
