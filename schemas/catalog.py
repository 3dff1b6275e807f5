"""The topic catalog: every topic of OptiBid, its key, partitions, retention and value schema.

Topics are a public contract. This module is the only place that spells a topic name;
everything else asks the catalog. Keys are UTF-8 strings (not Avro): market data is
keyed by `iso|market|location` so every interval of one series lands on one partition,
in order. Values are Avro in the Confluent wire format, registered under the subject
`<topic>-value` (TopicNameStrategy), so Kafka Connect, Flink, Spark and ksqlDB read them as is.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from enum import StrEnum

DAY_MS = 24 * 60 * 60 * 1000
FOREVER = -1


class Iso(StrEnum):
    """An ISO by its topic code (`raw.pjm.lmp_rt_5min`, `optibid connector pjm`, folder names).

    Records and events carry the upper-case wire value (`PJM`); `wire` and `from_wire` are the
    one place the two spellings meet, so no caller upper- or lower-cases an ISO by hand.
    """

    PJM = "pjm"
    CAISO = "caiso"
    ERCOT = "ercot"

    @property
    def wire(self) -> str:
        """The value records and events carry (`schemas.vocabulary.ISOS`)."""
        return _WIRE[self]

    @classmethod
    def from_wire(cls, value: str) -> Iso:
        """The ISO a record names; a clear error for one outside the vocabulary."""
        try:
            return _FROM_WIRE[value]
        except KeyError:
            expected = sorted(_FROM_WIRE)
            raise ValueError(f"unknown ISO {value!r}; expected one of {expected}") from None


_WIRE: dict[Iso, str] = {iso: iso.value.upper() for iso in Iso}
_FROM_WIRE: dict[str, Iso] = {wire: iso for iso, wire in _WIRE.items()}


class Dataset(StrEnum):
    LMP_DA_HOURLY = "lmp_da_hourly"
    LMP_RT_5MIN = "lmp_rt_5min"
    LMP_RT_15MIN = "lmp_rt_15min"
    LMP_RT_HOURLY = "lmp_rt_hourly"
    LOAD = "load"
    FUEL_MIX = "fuel_mix"
    AS_PRICES = "as_prices"


# Which datasets each ISO publishes natively (v1).
ISO_DATASETS: dict[Iso, tuple[Dataset, ...]] = {
    Iso.PJM: (
        Dataset.LMP_DA_HOURLY,
        Dataset.LMP_RT_5MIN,
        Dataset.LMP_RT_HOURLY,
        Dataset.LOAD,
        Dataset.FUEL_MIX,
        Dataset.AS_PRICES,
    ),
    # CAISO and ERCOT settle real time in 15-minute intervals and dispatch every 5 minutes
    **dict.fromkeys(
        (Iso.CAISO, Iso.ERCOT),
        (
            Dataset.LMP_DA_HOURLY,
            Dataset.LMP_RT_15MIN,
            Dataset.LMP_RT_5MIN,
            Dataset.LOAD,
            Dataset.FUEL_MIX,
            Dataset.AS_PRICES,
        ),
    ),
}

RAW_SCHEMA: dict[Dataset, str] = {
    Dataset.LMP_DA_HOURLY: "energy.optibid.raw.LmpReported",
    Dataset.LMP_RT_5MIN: "energy.optibid.raw.LmpReported",
    Dataset.LMP_RT_15MIN: "energy.optibid.raw.LmpReported",
    Dataset.LMP_RT_HOURLY: "energy.optibid.raw.LmpReported",
    Dataset.LOAD: "energy.optibid.raw.LoadReported",
    Dataset.FUEL_MIX: "energy.optibid.raw.FuelMixReported",
    Dataset.AS_PRICES: "energy.optibid.raw.AncillaryPriceReported",
}

SERIES_KEY = "iso|market|location_id"

# Raw topics are keyed per series of their dataset, so one series stays in order on one partition.
RAW_KEY: dict[Dataset, str] = {
    Dataset.LMP_DA_HOURLY: SERIES_KEY,
    Dataset.LMP_RT_5MIN: SERIES_KEY,
    Dataset.LMP_RT_15MIN: SERIES_KEY,
    Dataset.LMP_RT_HOURLY: SERIES_KEY,
    Dataset.LOAD: "iso|area_id",
    Dataset.FUEL_MIX: "iso|fuel_type_native",
    Dataset.AS_PRICES: "iso|market|region_id|product_native",
}

MARKET_DATA_PARTITIONS = 6  # raw, core and kpi topics share it so they co-partition by key

# Read models of the projectors; each has a dead-letter topic for events it cannot fold.
READ_MODELS = (
    "lmp",
    "load",
    "fuel_mix",
    "as_prices",
    "locations",
    "kpis",
    "gaps",
    "dead_letters",
    "connector_runs",
    "freshness",
)


@dataclass(frozen=True)
class TopicSpec:
    """One topic of the contract."""

    name: str
    key: str
    partitions: int
    value_schema: str
    doc: str
    retention_ms: int = FOREVER
    compact: bool = False

    @property
    def subject(self) -> str:
        """Registry subject of the value schema (TopicNameStrategy)."""
        return f"{self.name}-value"

    @property
    def config(self) -> dict[str, str]:
        """Broker-side topic configuration."""
        config = {
            "cleanup.policy": "compact" if self.compact else "delete",
            "retention.ms": str(self.retention_ms),
        }
        if self.compact:
            config["min.compaction.lag.ms"] = str(60 * 60 * 1000)
            # the active segment is never compacted: roll it hourly, not weekly, so a
            # compacted topic holds about the latest value per key, not every update of a week
            config["segment.ms"] = str(60 * 60 * 1000)
        return config

    def prefixed(self, prefix: str) -> TopicSpec:
        """The same topic under a name prefix (isolated environments, tests)."""
        return replace(self, name=f"{prefix}{self.name}") if prefix else self


def _build() -> tuple[TopicSpec, ...]:
    topics: list[TopicSpec] = []
    for iso, datasets in ISO_DATASETS.items():
        for dataset in datasets:
            topics.append(
                TopicSpec(
                    name=f"raw.{iso}.{dataset}",
                    key=RAW_KEY[dataset],
                    partitions=MARKET_DATA_PARTITIONS,
                    value_schema=RAW_SCHEMA[dataset],
                    doc=f"{iso.wire} {dataset} as parsed from the ISO, ISO-native fields kept.",
                    retention_ms=90 * DAY_MS,
                )
            )
            topics.append(
                TopicSpec(
                    name=f"dlq.{iso}.{dataset}",
                    key=SERIES_KEY,
                    partitions=1,
                    value_schema="energy.optibid.ingest.RecordDeadLettered",
                    doc=f"Rejected records of raw.{iso}.{dataset}: reasons, original bytes.",
                    retention_ms=30 * DAY_MS,
                )
            )
    core = [
        ("core.market.lmp", "energy.optibid.market.LmpPublished", SERIES_KEY, "Canonical LMP."),
        (
            "core.market.load",
            "energy.optibid.market.LoadPublished",
            "iso|area_id",
            "Canonical load.",
        ),
        (
            "core.market.fuel_mix",
            "energy.optibid.market.FuelMixPublished",
            "iso|fuel_type_native",
            "Canonical generation by fuel.",
        ),
        (
            "core.market.as_prices",
            "energy.optibid.market.AncillaryPricePublished",
            "iso|market|region_id|product_native",
            "Canonical ancillary service clearing prices.",
        ),
    ]
    for name, schema, key, doc in core:
        topics.append(TopicSpec(name, key, MARKET_DATA_PARTITIONS, schema, doc))
    topics.append(
        TopicSpec(
            "core.market.locations",
            SERIES_KEY,
            MARKET_DATA_PARTITIONS,
            "energy.optibid.market.LocationDiscovered",
            "Every location seen in the market data, first sighting; compacted.",
            compact=True,
        )
    )
    topics += [
        TopicSpec(
            "ingest.gaps",
            "iso|dataset",
            3,
            "energy.optibid.ingest.GapDetected",
            "Intervals still missing after the allowed lateness.",
            retention_ms=90 * DAY_MS,
        ),
        TopicSpec(
            "ingest.series_status",
            "iso|dataset|series_key",
            3,
            "energy.optibid.ingest.SeriesStatusChanged",
            "Series retired (silent past their dataset's retirement age) or active again;"
            " compacted, the latest status per series wins.",
            compact=True,
        ),
        TopicSpec(
            "ingest.backfill_requests",
            "iso|dataset",
            3,
            "energy.optibid.ingest.BackfillRequested",
            "Windows of one ISO dataset to fetch again, consumed by the backfill worker.",
            retention_ms=90 * DAY_MS,
        ),
        TopicSpec(
            "ingest.backfill_completed",
            "iso|dataset",
            3,
            "energy.optibid.ingest.BackfillCompleted",
            "Outcome of each backfill request.",
            retention_ms=90 * DAY_MS,
        ),
        TopicSpec(
            "ingest.connector_runs",
            "iso|dataset",
            3,
            "energy.optibid.ingest.ConnectorRunCompleted",
            "One event per connector run, for freshness and completeness.",
            retention_ms=90 * DAY_MS,
        ),
        TopicSpec(
            "ingest.connector_checkpoints",
            "iso|dataset|stream",
            1,
            "energy.optibid.ingest.ConnectorCheckpointed",
            "How far each connector stream has published; compacted, latest per key wins.",
            compact=True,
        ),
        TopicSpec(
            "ingest.freshness",
            "iso|dataset",
            1,
            "energy.optibid.ingest.FreshnessUpdated",
            "Latest interval, arrival latency and completeness per ISO dataset; compacted.",
            compact=True,
        ),
        TopicSpec(
            "kpi.lmp_hourly",
            SERIES_KEY,
            MARKET_DATA_PARTITIONS,
            "energy.optibid.kpi.KpiComputed",
            "LMP KPIs per location and market over hourly windows.",
        ),
        TopicSpec(
            "kpi.lmp_daily",
            SERIES_KEY,
            MARKET_DATA_PARTITIONS,
            "energy.optibid.kpi.KpiComputed",
            "LMP KPIs per location and market over the ISO's local operating day.",
        ),
        TopicSpec(
            "kpi.benchmark_inputs",
            "iso",
            MARKET_DATA_PARTITIONS,
            "energy.optibid.kpi.KpiComputed",
            "Series KPIs the benchmark stage needs (hourly and daily TWAP, daily volatility), "
            "keyed by ISO so one worker sees a whole market; internal to the KPI workers.",
            retention_ms=7 * DAY_MS,
        ),
    ]
    topics += _identity_topics()
    topics += _usage_topics()
    topics += [
        TopicSpec(
            f"dlq.projections.{model}",
            "the original record's key",
            1,
            "energy.optibid.ingest.RecordDeadLettered",
            f"Events the {model} projector could not fold: reasons, original bytes.",
            retention_ms=30 * DAY_MS,
        )
        for model in READ_MODELS
    ]
    return tuple(topics)


AGGREGATE_KEY = "aggregate_type:aggregate_id"
IDENTITY_PARTITIONS = 3


def _identity_topics() -> list[TopicSpec]:
    """Identity and access: commands, the events decided from them (the source of truth, kept
    for good), each command's outcome, and the audit log."""
    return [
        TopicSpec(
            "identity.commands",
            AGGREGATE_KEY,
            IDENTITY_PARTITIONS,
            "energy.optibid.identity.IdentityCommand",
            "Requests to change an organisation or a user, one handler per aggregate in order;"
            " secrets sealed. Kept 30 days: the events are the record.",
            retention_ms=30 * DAY_MS,
        ),
        TopicSpec(
            "identity.events",
            AGGREGATE_KEY,
            IDENTITY_PARTITIONS,
            "energy.optibid.identity.IdentityEvent",
            "Changes to organisations and users; replaying it rebuilds every identity read model.",
        ),
        TopicSpec(
            "identity.command_outcomes",
            AGGREGATE_KEY,
            IDENTITY_PARTITIONS,
            "energy.optibid.identity.IdentityCommandOutcome",
            "Accepted or rejected, per command; the API waits for it.",
            retention_ms=7 * DAY_MS,
        ),
        TopicSpec(
            "audit.events",
            "org_id",
            IDENTITY_PARTITIONS,
            "energy.optibid.identity.AuditRecorded",
            "Every identity command and authentication event, with actor, organisation and client.",
        ),
    ]


USAGE_PARTITIONS = 3


def _usage_topics() -> list[TopicSpec]:
    """Usage metering: every request served, and the meter's closed windows."""
    return [
        TopicSpec(
            "usage.requests",
            "org_id",
            USAGE_PARTITIONS,
            "energy.optibid.usage.RequestServed",
            "One record per request served to a principal; the meter's input. Kept 35 days.",
            retention_ms=35 * DAY_MS,
        ),
        TopicSpec(
            "usage.windows",
            "org_id",
            USAGE_PARTITIONS,
            "energy.optibid.usage.UsageWindowClosed",
            "Per organisation and metering window: requests, rows and bytes; what billing counts.",
        ),
    ]


class TopicCatalog:
    """Every topic, optionally under a name prefix (one prefix per isolated environment)."""

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix
        self._topics = {t.name: t.prefixed(prefix) for t in _build()}

    def __iter__(self) -> Iterator[TopicSpec]:
        return iter(self._topics.values())

    def __len__(self) -> int:
        return len(self._topics)

    def _get(self, base_name: str) -> TopicSpec:
        try:
            return self._topics[base_name]
        except KeyError:
            raise KeyError(f"no topic {base_name!r} in the catalog") from None

    def raw(self, iso: Iso, dataset: Dataset) -> TopicSpec:
        if dataset not in ISO_DATASETS[iso]:
            raise KeyError(f"{iso} publishes no {dataset} dataset")
        return self._get(f"raw.{iso}.{dataset}")

    def dlq(self, iso: Iso, dataset: Dataset) -> TopicSpec:
        return self._get(f"dlq.{iso}.{dataset}")

    def core(self, name: str) -> TopicSpec:
        return self._get(f"core.market.{name}")

    def ingest(self, name: str) -> TopicSpec:
        return self._get(f"ingest.{name}")

    def kpi(self, name: str) -> TopicSpec:
        return self._get(f"kpi.{name}")

    def identity(self, name: str) -> TopicSpec:
        """identity.commands, identity.events or identity.command_outcomes."""
        return self._get(f"identity.{name}")

    def usage(self, name: str) -> TopicSpec:
        """usage.requests or usage.windows."""
        return self._get(f"usage.{name}")

    def audit(self) -> TopicSpec:
        return self._get("audit.events")

    def projection_dlq(self, read_model: str) -> TopicSpec:
        """Dead letters of one read model's projector."""
        return self._get(f"dlq.projections.{read_model}")
