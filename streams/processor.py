"""The market-data step of the stream worker, free of Faust: decode, validate, dedupe and apply
revisions, normalise, discover locations, track gaps. The Faust agent calls `process` for each
raw record and sends what it returns.

State lives in two mappings the caller provides (Faust tables with changelogs in the worker,
plain dicts in tests): `latest` (natural key -> [revision, value digest, source offset,
superseded revision, series key, interval minutes]) and `locations` (series key -> source
offset of its first sighting). `latest` keeps a key for `retention` (interval start behind
the newest interval of its partition): a revision of an interval older than that is treated
as new again, which downstream folds absorb (they upsert with a revision guard).
The processor reads through in-memory mirrors of both, loaded
once from the mappings (after a restart, the tables as recovered from their changelogs), and
writes through to them only on change. The gap trackers are derived state: rebuilt from the
`latest` keys on load, so they need no table of their own.
Remembering which offset set a state makes reprocessing after a crash re-emit what it had
emitted (same deterministic event ids, harmless downstream), while a true redelivery or re-fetch
from another offset emits nothing new.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from prometheus_client import Counter

from schemas import vocabulary
from schemas.catalog import Dataset, Iso, TopicCatalog, TopicSpec
from schemas.envelope import envelope
from schemas.errors import DeserializationError
from schemas.serde import AvroSerde
from streams.gaps import BackfillWindow, Gap, GapTracker, SeriesChange
from streams.normalise import KINDS, Kind, natural_key, normalise, series_key, value_of
from streams.revisions import Decision, Known, decide
from streams.validate import Failure, ValidationConfig, validate

RECORDS_IN = Counter("optibid_stream_records_total", "Raw records processed", ["iso", "dataset"])
DEAD_LETTERED = Counter(
    "optibid_stream_dead_lettered_total",
    "Records sent to a DLQ, by reason",
    ["iso", "dataset", "reason"],
)
DECISIONS = Counter(
    "optibid_stream_revision_decisions_total",
    "What the revision step decided (new, duplicate, correction, unchanged, stale, conflict)",
    ["iso", "dataset", "decision"],
)
LOCATIONS_NEW = Counter(
    "optibid_stream_locations_discovered_total", "Locations seen first", ["iso"]
)
LOCATION_NAMESPACE = uuid.UUID("e1a2c3d4-5b6f-4a7e-8c9d-0e1f2a3b4c5d")
DLQ_NAMESPACE = uuid.UUID("f0e1d2c3-b4a5-4968-8776-655443322110")
SERIES_STATUS_NAMESPACE = uuid.UUID("5c0f7d4e-2b8a-4e61-9a3d-7e2c1b9f4a86")


class DatasetPolicy(NamedTuple):
    """How the worker waits for, fetches again and gives up on one dataset's intervals."""

    lateness: timedelta  # how far the watermark passes an interval before it is declared missing
    # how far back a backfill may reach: the tightest of the three ISOs' feeds as their
    # connectors document them (PJM's filtered verified 5-minute LMPs about 186 days, its fuel
    # mix and ERCOT's dashboards about 30 days, Data Miner's filtered hourly feeds about 2 years)
    backfill_reach: timedelta
    # how long a series may stay silent while the rest of its dataset goes on before it is
    # retired (a node the ISO took out of its model, an old file replayed): its silence is
    # gap-filled up to this age, never beyond; it comes back when its data does
    retirement_age: timedelta


_MIN, _H, _D = timedelta(minutes=1), timedelta(hours=1), timedelta(days=1)
DATASET_POLICY: dict[Dataset, DatasetPolicy] = {
    Dataset.LMP_RT_5MIN: DatasetPolicy(20 * _MIN, 180 * _D, 7 * _D),
    Dataset.LMP_RT_15MIN: DatasetPolicy(45 * _MIN, 180 * _D, 7 * _D),
    Dataset.LMP_RT_HOURLY: DatasetPolicy(3 * _H, 730 * _D, 7 * _D),
    Dataset.LMP_DA_HOURLY: DatasetPolicy(1 * _D, 730 * _D, 14 * _D),
    Dataset.LOAD: DatasetPolicy(2 * _H, 730 * _D, 7 * _D),
    Dataset.FUEL_MIX: DatasetPolicy(1 * _H, 30 * _D, 7 * _D),
    Dataset.AS_PRICES: DatasetPolicy(1 * _D, 730 * _D, 14 * _D),
}
DEFAULT_LATENESS = {d: p.lateness for d, p in DATASET_POLICY.items()}
DEFAULT_BACKFILL_REACH = {d: p.backfill_reach for d, p in DATASET_POLICY.items()}
DEFAULT_RETIREMENT_AGE = {d: p.retirement_age for d, p in DATASET_POLICY.items()}
# ISOs revise prices for weeks (PJM settles ~60 days later); keys older than this are dropped
DEFAULT_REVISION_RETENTION = timedelta(days=90)
EXPIRE_EVERY = timedelta(hours=1)
EXPIRED = Counter(
    "optibid_stream_revision_keys_expired_total",
    "Natural keys dropped from the revisions table past their retention",
)


@dataclass(frozen=True)
class Output:
    """One event to send: topic, key, and the Avro record of the topic's value schema."""

    topic: TopicSpec
    key: str
    value: dict[str, Any]


def digest(value: tuple[Any, ...]) -> str:
    return hashlib.blake2b(repr(value).encode(), digest_size=12).hexdigest()


class RevisionState(NamedTuple):
    """What the revisions table keeps per natural key, by name. The table and its changelog
    hold it as a JSON list in this order (`stored()`), so state written before stays readable."""

    revision: int
    digest: str  # of the canonical value
    source: str  # "topic:partition:offset" of the raw record that set it
    supersedes: int | None  # the revision a correction replaced, if it was one
    series_key: str
    interval_minutes: int

    @classmethod
    def of(cls, stored: Sequence[Any] | None) -> RevisionState | None:
        """From the table's list. State of the older, four-item shape (no series key and
        interval length) still dedupes; its key rebuilds no gap tracker (`tracked`)."""
        if stored is None or len(stored) < 4:
            return None
        revision, digest, source, supersedes, *rest = stored
        series, minutes = (rest[0], rest[1]) if len(rest) >= 2 else ("", 0)
        return cls(revision, digest, source, supersedes, series, minutes)

    @property
    def tracked(self) -> bool:
        return self.interval_minutes > 0

    def stored(self) -> list[Any]:
        return list(self)

    @property
    def topic(self) -> str:
        return self.source.rsplit(":", 2)[0]

    @property
    def partition(self) -> int:
        return int(self.source.rsplit(":", 2)[1])


@dataclass
class MarketProcessor:
    catalog: TopicCatalog
    serde: AvroSerde
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    lateness: Mapping[Dataset, timedelta] = field(default_factory=lambda: dict(DEFAULT_LATENESS))
    trackers: dict[str, GapTracker] = field(default_factory=dict)
    retention: timedelta = DEFAULT_REVISION_RETENTION
    expire_every: timedelta = EXPIRE_EVERY
    retirement: Mapping[Dataset, timedelta] = field(
        default_factory=lambda: dict(DEFAULT_RETIREMENT_AGE)
    )

    def __post_init__(self) -> None:
        self.known: dict[str, RevisionState] = {}
        self._expire_due: dict[int, datetime] = {}  # partition -> next expiry pass
        self._newest: dict[int, datetime] = {}  # partition -> newest interval start seen
        self._newest_at_pass: dict[int, datetime] = {}  # ...when its last expiry pass ran
        self._expiry_stride = self.retention / 8  # event time between passes of a partition
        self.first_seen: dict[str, Any] = {}
        self._loaded = False
        self._decisions: dict[tuple[Iso, Dataset, Decision], Any] = {}
        self.raw_topics: dict[str, tuple[Iso, Dataset]] = {}
        for iso in Iso:
            for dataset in Dataset:
                try:
                    self.raw_topics[self.catalog.raw(iso, dataset).name] = (iso, dataset)
                except KeyError:
                    continue
        self._records_in = {
            topic: RECORDS_IN.labels(iso.value, dataset.value)
            for topic, (iso, dataset) in self.raw_topics.items()
        }

    def _decision_counter(self, iso: Iso, dataset: Dataset, decision: Decision) -> Any:
        key = (iso, dataset, decision)
        counter = self._decisions.get(key)
        if counter is None:
            counter = DECISIONS.labels(iso.value, dataset.value, decision.value)
            self._decisions[key] = counter
        return counter

    def process(
        self,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        data: bytes,
        latest: MutableMapping[str, Any],
        locations: MutableMapping[str, Any],
        now: datetime | None = None,
        timestamp_utc: datetime | None = None,
    ) -> list[Output]:
        now = now or datetime.now(UTC)
        if not self._loaded:
            self.load(latest, locations)
        if self._expiry_due(partition, now):
            self._expire_due[partition] = now + self.expire_every
            if partition in self._newest:
                self._newest_at_pass[partition] = self._newest[partition]
            self.expire(partition, latest)
        iso, dataset = self.raw_topics[topic]
        self._records_in[topic].inc()
        source = f"{topic}:{partition}:{offset}"
        try:
            full_name, raw = self.serde.decode(data)
        except DeserializationError as exc:
            failure = Failure("UNDECODABLE", str(exc))
            return [
                self._dead_letter(
                    iso, dataset, [failure], topic, partition, offset, key, data, now, timestamp_utc
                )
            ]
        kind = KINDS.get(full_name)
        failures = validate(dataset.value, raw, now, self.validation)
        if kind is None:
            failures.append(
                Failure("UNKNOWN_SCHEMA", f"{full_name} is not a raw market-data schema")
            )
        if failures:
            return [
                self._dead_letter(
                    iso, dataset, failures, topic, partition, offset, key, data, now, timestamp_utc
                )
            ]
        assert kind is not None
        outputs = self._revise(
            kind,
            iso,
            dataset,
            raw,
            source,
            latest,
            now,
            topic,
            partition,
            offset,
            key,
            data,
            timestamp_utc,
        )
        if kind.core == "lmp":
            outputs += self._discover(raw, dataset, source, locations, now)
        self._track(iso, dataset, partition, series_key(kind, raw), raw)
        start = raw["interval_start_utc"]
        if partition not in self._newest or start > self._newest[partition]:
            self._newest[partition] = start
        return outputs

    def _expiry_due(self, partition: int, now: datetime) -> bool:
        """An expiry pass runs every `expire_every` of wall-clock time, and also whenever the
        partition's event time has moved on by an eighth of the retention since the last pass:
        a replay of years in an hour keeps the mirror within 9/8 of the retention too."""
        due = self._expire_due.get(partition)
        if due is None or now >= due:
            return True
        newest, at_pass = self._newest.get(partition), self._newest_at_pass.get(partition)
        if newest is None:
            return False
        return at_pass is None or newest - at_pass >= self._expiry_stride

    def _revise(
        self,
        kind: Kind,
        iso: Iso,
        dataset: Dataset,
        raw: dict[str, Any],
        source: str,
        latest: MutableMapping[str, Any],
        now: datetime,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        data: bytes,
        timestamp_utc: datetime | None,
    ) -> list[Output]:
        nk = f"{kind.core}|{natural_key(kind, raw)}"
        value = digest(value_of(kind, raw))
        stored = self.known.get(nk)
        known = Known(stored.revision, (stored.digest,)) if stored else None
        decision = decide(known, raw["revision"], (value,))
        if decision is Decision.DUPLICATE and stored and stored.source == source:
            # the same raw record again (a re-read after a crash): emit what it emitted
            decision = Decision.CORRECTION if stored.supersedes is not None else Decision.NEW
        self._decision_counter(iso, dataset, decision).inc()
        if decision is Decision.CONFLICT:
            failure = Failure(
                "REVISION_CONFLICT",
                f"revision {raw['revision']} of {nk} already published with another value",
            )
            return [
                self._dead_letter(
                    iso, dataset, [failure], topic, partition, offset, key, data, now, timestamp_utc
                )
            ]
        if decision in (Decision.DUPLICATE, Decision.STALE):
            return []
        supersedes = None
        if decision is Decision.CORRECTION and stored is not None:
            supersedes = stored.supersedes if stored.source == source else stored.revision
        state = RevisionState(
            raw["revision"],
            value,
            source,
            supersedes,
            series_key(kind, raw),
            raw["interval_minutes"],
        )
        self.known[nk] = state
        latest[nk] = state.stored()
        if decision is Decision.UNCHANGED:
            return []
        event = normalise(kind, raw, now, supersedes_revision=supersedes)
        return [Output(self.catalog.core(kind.core), series_key(kind, raw), event)]

    def _discover(
        self,
        raw: dict[str, Any],
        dataset: Dataset,
        source: str,
        locations: MutableMapping[str, Any],
        now: datetime,
    ) -> list[Output]:
        key = vocabulary.series_key(raw["iso"], raw["market"], raw["location_id"])
        first = self.first_seen.get(key)
        if first is not None and first != source:
            return []
        self.first_seen[key] = source
        locations[key] = source
        LOCATIONS_NEW.labels(raw["iso"]).inc()
        event = {
            **envelope(
                event_id=str(uuid.uuid5(LOCATION_NAMESPACE, key)),
                occurred_at_utc=raw["interval_start_utc"],
                recorded_at_utc=now,
                source="worker:normalise",
            ),
            "iso": raw["iso"],
            "market": raw["market"],
            "location_id": raw["location_id"],
            "location_name": raw.get("location_name"),
            "location_type": raw["location_type"],
            "first_interval_start_utc": raw["interval_start_utc"],
            "source_dataset": dataset.value,
        }
        return [Output(self.catalog.core("locations"), key, event)]

    def _tracker(self, tracker_key: str, iso: Iso, dataset: str) -> GapTracker:
        tracker = self.trackers.get(tracker_key)
        if tracker is None:
            tracker = GapTracker(
                iso.wire,
                dataset,
                self.lateness[Dataset(dataset)],
                retire_after=self.retirement.get(Dataset(dataset)),
            )
            self.trackers[tracker_key] = tracker
        return tracker

    def _track(
        self, iso: Iso, dataset: Dataset, partition: int, series: str, raw: dict[str, Any]
    ) -> None:
        tracker = self._tracker(f"{partition}|{iso.value}|{dataset.value}", iso, dataset.value)
        tracker.observe(series, raw["interval_start_utc"], raw["interval_minutes"])

    def expire(self, partition: int, latest: MutableMapping[str, Any]) -> int:
        """Drop the natural keys set from `partition` (the table partition they live in) whose
        interval starts more than `retention` before the latest interval seen there, in event
        time like the gap trackers, so a replay of old data keeps what a live run would.
        Returns how many. Runs within that partition's records, so the tombstones go to that
        partition's changelog."""
        starts: dict[str, datetime] = {}
        for natural, state in self.known.items():
            if state.partition == partition:
                starts[natural] = datetime.fromisoformat(natural.rsplit("|", 1)[1])
        if not starts:
            return 0
        horizon = max(starts.values()) - self.retention
        expired = [natural for natural, start in starts.items() if start < horizon]
        for natural in expired:
            del self.known[natural]
            del latest[natural]
        EXPIRED.inc(len(expired))
        return len(expired)

    def unload(self) -> None:
        """Forget the mirrors: the next record reads them from the tables again (after a
        rebalance, when the worker's partitions and so its tables' contents changed)."""
        self._loaded = False

    def load(self, latest: Mapping[str, Any], locations: Mapping[str, Any]) -> None:
        """Mirror the persisted state and rebuild the gap trackers from it (after a restart)."""
        self.known = {
            natural: state
            for natural, stored in latest.items()
            if (state := RevisionState.of(stored)) is not None
        }
        self.first_seen = dict(locations.items())
        self.trackers.clear()
        # in event-time order, so each series' holes are found again as they were
        for natural, state in sorted(self.known.items(), key=lambda kv: kv[0].rsplit("|", 1)[1]):
            pair = self.raw_topics.get(state.topic)
            if pair is None or not state.tracked:
                continue
            iso, dataset = pair
            start = datetime.fromisoformat(natural.rsplit("|", 1)[1])
            tracker = self._tracker(
                f"{state.partition}|{iso.value}|{dataset.value}", iso, dataset.value
            )
            tracker.observe(state.series_key, start, state.interval_minutes)
        self._loaded = True

    def _dead_letter(
        self,
        iso: Iso,
        dataset: Dataset,
        failures: list[Failure],
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        data: bytes,
        now: datetime,
        timestamp_utc: datetime | None,
    ) -> Output:
        for failure in failures:
            DEAD_LETTERED.labels(iso.value, dataset.value, failure.code).inc()
        event = {
            **envelope(
                event_id=str(uuid.uuid5(DLQ_NAMESPACE, f"{topic}|{partition}|{offset}")),
                occurred_at_utc=timestamp_utc or now,
                recorded_at_utc=now,
                source="worker:validate",
            ),
            "iso": iso.wire,
            "dataset": dataset.value,
            "reason_codes": [f.code for f in failures],
            "reasons": [f.message for f in failures],
            "original_topic": topic,
            "original_partition": partition,
            "original_offset": offset,
            "original_key": key,
            "original_value": data,
            "original_timestamp_utc": timestamp_utc,
        }
        return Output(self.catalog.dlq(iso, dataset), (key or b"").decode(errors="replace"), event)

    def due_gaps(self) -> list[Gap]:
        """Gaps whose lateness has passed, across every tracker.

        A worker that dies after declaring a gap declares it again after its restart, under the
        same deterministic gap id, which the backfill planner and the backfill path absorb.
        """
        gaps: list[Gap] = []
        for tracker in self.trackers.values():
            gaps += tracker.tick()
        return gaps

    def series_changes(self) -> list[SeriesChange]:
        """Series retired or back since the last call, across every tracker."""
        return [c for tracker in self.trackers.values() for c in tracker.drain_changes()]

    def retired_series(self) -> dict[tuple[str, str], int]:
        """(ISO, dataset) -> how many of its series are retired now."""
        counts: dict[tuple[str, str], int] = {}
        for tracker in self.trackers.values():
            n = sum(1 for state in tracker.series.values() if state.retired)
            key = (tracker.iso, tracker.dataset)
            counts[key] = counts.get(key, 0) + n
        return counts

    def open_gap_count(self) -> int:
        return sum(len(tracker.open_gaps) for tracker in self.trackers.values())

    def open_gaps(self) -> list[Gap]:
        return [g for tracker in self.trackers.values() for g in tracker.open_gaps.values()]


def series_status_event(
    change: SeriesChange, retirement_age: timedelta, now: datetime
) -> dict[str, Any]:
    """The SeriesStatusChanged of a retirement or a return; its id is deterministic in the
    series, the status and the last interval received, so an announcement repeated after a
    restart is the same event."""
    name = (
        f"{change.iso}|{change.dataset}|{change.series_key}|{change.status}"
        f"|{change.last_interval_start_utc.isoformat()}"
    )
    return {
        **envelope(
            event_id=str(uuid.uuid5(SERIES_STATUS_NAMESPACE, name)),
            occurred_at_utc=change.at_utc,
            recorded_at_utc=now,
            source="worker:gaps",
        ),
        "iso": change.iso,
        "dataset": change.dataset,
        "series_key": change.series_key,
        "status": change.status,
        "last_interval_start_utc": change.last_interval_start_utc,
        "interval_minutes": change.interval_minutes,
        "retirement_age_seconds": int(retirement_age.total_seconds()),
    }


def gap_event(gap: Gap, lateness: timedelta, now: datetime) -> dict[str, Any]:
    return {
        **envelope(
            event_id=gap.gap_id,
            occurred_at_utc=gap.end_utc,
            recorded_at_utc=now,
            source="worker:gaps",
        ),
        "gap_id": gap.gap_id,
        "iso": gap.iso,
        "dataset": gap.dataset,
        "series_key": gap.series_key,
        "missing_start_utc": gap.start_utc,
        "missing_end_utc": gap.end_utc,
        "interval_minutes": gap.interval_minutes,
        "missing_intervals": gap.missing_intervals,
        "lateness_seconds": int(lateness.total_seconds()),
    }


def freshness_event(run: Mapping[str, Any], share: float | None, now: datetime) -> dict[str, Any]:
    """The FreshnessUpdated of a connector run (ConnectorRunCompleted), with the dataset's
    completeness over the day before its watermark (`gaps.completeness`)."""
    return {
        **envelope(
            event_id=run["run_id"],
            occurred_at_utc=run["finished_at_utc"],
            recorded_at_utc=now,
            source="worker:freshness",
        ),
        "iso": run["iso"],
        "dataset": run["dataset"],
        "latest_interval_end_utc": run["last_interval_end_utc"],
        "arrival_latency_seconds": run["publish_latency_seconds"],
        "last_run_id": run["run_id"],
        "last_run_finished_utc": run["finished_at_utc"],
        "rows_last_run": run["rows_published"],
        "errors_last_run": run["error_count"],
        "last_day_completeness_share": share,
    }


def backfill_request_event(window: BackfillWindow, now: datetime) -> dict[str, Any]:
    """The BackfillRequested of one window; a retry's event id names its attempt."""
    first = window.attempt == 1
    return {
        **envelope(
            event_id=window.request_id if first else f"{window.request_id}#{window.attempt}",
            occurred_at_utc=now,
            recorded_at_utc=now,
            source="worker:gaps",
        ),
        "request_id": window.request_id,
        "iso": window.iso,
        "dataset": window.dataset,
        "window_start_utc": window.start_utc,
        "window_end_utc": window.end_utc,
        "gap_ids": list(window.gap_ids),
        "attempt": window.attempt,
        "reason": "gap" if first else f"retry after attempt {window.attempt - 1}",
    }
