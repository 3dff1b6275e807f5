"""OptiBid's Grafana dashboards, built with grafana-foundation-sdk and written as JSON.

    python -m ops.grafana.dashboards            # (re)write ops/grafana/dashboards/*.json
    python -m ops.grafana.dashboards --check    # exit 1 when a committed file differs

Four dashboards over the metrics the roles expose (prometheus_client) and the recording rules
of ops/prometheus/rules/: the pipeline overview, the data health of one ISO, the API and the
platform (identity, usage metering, billing). Every panel queries the Prometheus data source
chosen in the `datasource` variable. The JSON is written with sorted keys, an indent of 2 and a
trailing newline, so a change to a panel shows as a small diff.

tests/unit/test_grafana_dashboards.py checks that the committed files are this module's output
and that every metric, label and recorded series the panels name exists;
tests/integration/test_prometheus_dashboards.py runs every expression against a Prometheus
scraping the pipeline.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as builders
from grafana_foundation_sdk.builders import prometheus, stat, timeseries
from grafana_foundation_sdk.cog import variants
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as models

OUT = Path(__file__).resolve().parent / "dashboards"
DATASOURCE = models.DataSourceRef(type_val="prometheus", uid="${datasource}")
TAGS = ["optibid"]
# How the API's availability objective (99.9 %) turns an error ratio into a burn rate, and the
# burn rates the alerts page at (ops/prometheus/rules/optibid.rules.yml, optibid.api).
ERROR_BUDGET = 0.001
SLOW_BURN, FAST_BURN = 6, 14.4
# The routes the availability objective leaves out (the probes and the scrape).
NOT_SLO_ROUTES = '"/health|/ready|/metrics"'
# The per-ISO dashboard's ISO: lower-case in most series (`pjm`), upper-case where a series
# carries the wire name (`PJM`: gaps, backfill requests); the match ignores case.
ISO = 'iso=~"(?i)$iso"'


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = ""


@dataclass(frozen=True)
class Panel:
    """One panel: a time series (`kind="series"`) or a single value (`kind="stat"`)."""

    title: str
    description: str
    queries: tuple[Query, ...]
    unit: str = "short"
    kind: str = "series"
    width: int = 12
    height: int = 8
    # (value, colour) steps above the base colour, where the alert rules set a threshold
    thresholds: tuple[tuple[float, str], ...] = ()
    up_down: bool = False  # 1 is up, 0 is down
    stacked: bool = False
    minimum: float | None = None


@dataclass(frozen=True)
class Row:
    title: str
    panels: tuple[Panel, ...]


@dataclass(frozen=True)
class Board:
    uid: str
    title: str
    description: str
    rows: tuple[Row, ...]
    iso_variable: bool = False
    tags: tuple[str, ...] = field(default=())


def q(expr: str, legend: str = "") -> Query:
    return Query(" ".join(expr.split()), legend)


def _thresholds(steps: Sequence[tuple[float, str]], base: str) -> builders.ThresholdsConfig:
    return (
        builders.ThresholdsConfig()
        .mode(models.ThresholdsMode.ABSOLUTE)
        .steps([models.Threshold(None, base), *(models.Threshold(v, c) for v, c in steps)])
    )


def _targets(panel: Panel, instant: bool) -> list[Builder[variants.Dataquery]]:
    targets: list[Builder[variants.Dataquery]] = []
    for index, query in enumerate(panel.queries):
        target = (
            prometheus.Dataquery()
            .expr(query.expr)
            .ref_id(chr(ord("A") + index))
            .datasource(DATASOURCE)
        )
        if query.legend:
            target = target.legend_format(query.legend)
        targets.append(target.instant() if instant else target.range())
    return targets


def _stat(panel: Panel, panel_id: int) -> stat.Panel:
    built = (
        stat.Panel()
        .id(panel_id)
        .title(panel.title)
        .description(panel.description)
        .datasource(DATASOURCE)
        .targets(_targets(panel, instant=True))
        .unit(panel.unit)
        .span(panel.width)
        .height(panel.height)
        .graph_mode(common.BigValueGraphMode.NONE)
        .color_mode(common.BigValueColorMode.BACKGROUND)
        .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]))
    )
    if panel.up_down:
        built = built.mappings(
            [
                models.ValueMap(
                    {
                        "0": models.ValueMappingResult(text="down", color="red", index=0),
                        "1": models.ValueMappingResult(text="up", color="green", index=1),
                    }
                )
            ]
        ).thresholds(_thresholds([(1, "green")], "red"))
    else:
        built = built.thresholds(_thresholds(panel.thresholds, "green"))
    return built


def _series(panel: Panel, panel_id: int) -> timeseries.Panel:
    built = (
        timeseries.Panel()
        .id(panel_id)
        .title(panel.title)
        .description(panel.description)
        .datasource(DATASOURCE)
        .targets(_targets(panel, instant=False))
        .unit(panel.unit)
        .span(panel.width)
        .height(panel.height)
        .line_width(1)
        .fill_opacity(10)
        .legend(
            common_builders.VizLegendOptions()
            .display_mode(common.LegendDisplayMode.TABLE)
            .placement(common.LegendPlacement.BOTTOM)
            .show_legend(True)
            .calcs(["lastNotNull", "max"])
        )
        .tooltip(common_builders.VizTooltipOptions().mode(common.TooltipDisplayMode.MULTI))
    )
    if panel.minimum is not None:
        built = built.min(panel.minimum)
    if panel.stacked:
        built = built.stacking(common_builders.StackingConfig().mode(common.StackingMode.NORMAL))
    if panel.thresholds:
        built = built.thresholds(_thresholds(panel.thresholds, "green")).thresholds_style(
            common_builders.GraphThresholdsStyleConfig().mode(
                common.GraphThresholdsStyleMode.DASHED
            )
        )
    return built


def build(board: Board) -> builders.Dashboard:
    """The dashboard of `board`: its variables, then each row and its panels in order."""
    built = (
        builders.Dashboard(board.title)
        .uid(board.uid)
        .description(board.description)
        .tags([*TAGS, *board.tags])
        .editable()
        .timezone("utc")
        .time("now-6h", "now")
        .refresh("30s")
        .tooltip(models.DashboardCursorSync.CROSSHAIR)
        .with_variable(
            builders.DatasourceVariable("datasource")
            .label("Data source")
            .type("prometheus")
            .current(models.VariableOption(selected=True, text="Prometheus", value="prometheus"))
        )
    )
    if board.iso_variable:
        built = built.with_variable(
            builders.QueryVariable("iso")
            .label("ISO")
            .description("The ISO whose data this dashboard shows.")
            .datasource(DATASOURCE)
            .query("label_values(optibid_stream_records_total, iso)")
            .refresh(models.VariableRefresh.ON_DASHBOARD_LOAD)
            .sort(models.VariableSort.ALPHABETICAL_ASC)
            .current(models.VariableOption(selected=True, text="pjm", value="pjm"))
        )
    panel_id = 0
    for row in board.rows:
        panel_id += 1
        built = built.with_row(builders.Row(row.title).id(panel_id))
        for panel in row.panels:
            panel_id += 1
            made = _stat(panel, panel_id) if panel.kind == "stat" else _series(panel, panel_id)
            built = built.with_panel(made)
    return built


# --- the dashboards ---------------------------------------------------------------------------

UP = "up (1) or down (0)"

PIPELINE = Board(
    uid="optibid-pipeline",
    title="OptiBid / Pipeline overview",
    description="ISO feeds to Kafka, the stream workers, the projectors and their read models: "
    "throughput, freshness, consumer lag, dead letters, gaps, and whether every role reaches "
    "its brokers, registry and databases.",
    tags=("pipeline",),
    rows=(
        Row(
            "Health",
            (
                Panel(
                    "Targets scraped",
                    "Prometheus reaches the role's metrics endpoint (the scrape's own `up`).",
                    (q('min by (job) (up{job=~"optibid-.*"})', "{{job}}"),),
                    kind="stat",
                    width=8,
                    up_down=True,
                ),
                Panel(
                    "Kafka brokers reachable, by role",
                    "Alert OptibidBrokerUnreachable: a role has reached no broker for 2 minutes.",
                    (q("min by (role) (optibid_broker_up)", "{{role}}"),),
                    kind="stat",
                    width=8,
                    up_down=True,
                ),
                Panel(
                    "Schema registry reachable",
                    "The stream workers' view of the schema registry. Alert "
                    "OptibidSchemaRegistryUnreachable after 5 minutes down.",
                    (q("min(optibid_stream_registry_up)", "registry"),),
                    kind="stat",
                    width=4,
                    up_down=True,
                ),
                Panel(
                    "Open gaps",
                    "Gaps the stream workers declared and that are not filled yet.",
                    (q("sum(optibid_stream_gaps_open)", "open gaps"),),
                    kind="stat",
                    width=4,
                    thresholds=((1, "orange"),),
                ),
            ),
        ),
        Row(
            "Ingest",
            (
                Panel(
                    "Records published by the connectors",
                    "Records per second the connectors publish to the raw topics, by ISO and "
                    "dataset (5-minute rate).",
                    (q("iso_dataset:optibid_connector_records:rate5m", "{{iso}} {{dataset}}"),),
                    unit="reqps",
                    stacked=True,
                ),
                Panel(
                    "Records processed by the stream workers",
                    "Raw records the stream workers validated and normalised, by ISO and "
                    "dataset (5-minute rate).",
                    (q("iso_dataset:optibid_stream_records:rate5m", "{{iso}} {{dataset}}"),),
                    unit="reqps",
                    stacked=True,
                ),
                Panel(
                    "Publish latency (p90 over 2 h)",
                    "Seconds from an interval's end to its publish by a live connector, 90th "
                    "percentile over 2 hours.",
                    (
                        q(
                            "iso_dataset:optibid_connector_publish_latency_seconds:p90_2h",
                            "{{iso}} {{dataset}}",
                        ),
                    ),
                    unit="s",
                ),
                Panel(
                    "Seconds since the last publish",
                    "How long ago each live connector last published records. Alert "
                    "OptibidConnectorStalled past three polling cadences (per-ISO dashboard).",
                    (
                        q(
                            "iso_dataset:optibid_connector_last_publish_age_seconds",
                            "{{iso}} {{dataset}}",
                        ),
                    ),
                    unit="s",
                ),
            ),
        ),
        Row(
            "Consumers and dead letters",
            (
                Panel(
                    "Consumer lag, by group and partition",
                    "Records written to a partition and not yet committed by the consumer "
                    "group (stream worker, KPI worker, identity handler, meter, identity and "
                    "usage projectors, billing). Alerts OptibidConsumerLagGrowing (a group over "
                    "1000 and growing for 30 minutes) and OptibidConsumerLagHigh (over 100000 "
                    "for 15 minutes).",
                    (
                        q(
                            "max by (group, topic, partition) (optibid_consumer_lag_records)",
                            "{{group}} {{topic}}[{{partition}}]",
                        ),
                    ),
                    width=24,
                    height=10,
                ),
                Panel(
                    "Dead letters, by reason",
                    "Raw records the stream workers sent to a DLQ, per second over 10 minutes, "
                    "by validation reason.",
                    (
                        q(
                            "sum by (reason) "
                            "(iso_dataset_reason:optibid_stream_dead_lettered:rate10m)",
                            "{{reason}}",
                        ),
                    ),
                    unit="reqps",
                    stacked=True,
                ),
                Panel(
                    "Dead-letter ratio",
                    "Share of an ISO dataset's records dead-lettered, by reason, over 10 "
                    "minutes. Alert OptibidStreamDeadLetterSpike above 1 % (and 10 records).",
                    (
                        q(
                            "iso_dataset_reason:optibid_stream_dead_lettered:ratio_rate10m",
                            "{{iso}} {{dataset}} {{reason}}",
                        ),
                    ),
                    unit="percentunit",
                    thresholds=((0.01, "red"),),
                    minimum=0,
                ),
            ),
        ),
        Row(
            "Projections",
            (
                Panel(
                    "Projection lag",
                    "Records each read model's projector is behind its topics' ends. Alerts "
                    "OptibidProjectionLagGrowing (over 1000 and growing for 30 minutes) and "
                    "OptibidProjectionLagHigh (over 100000 for 15 minutes).",
                    (q("read_model:optibid_projection_lag_records:sum", "{{read_model}}"),),
                    thresholds=((1000, "orange"), (100000, "red")),
                    minimum=0,
                ),
                Panel(
                    "Events projected",
                    "Events per second each market-data read model consumes (5-minute rate).",
                    (q("read_model:optibid_projector_events:rate5m", "{{read_model}}"),),
                    unit="reqps",
                ),
                Panel(
                    "PostgreSQL takes the projectors' writes",
                    "Alert OptibidProjectorPostgresDown after 5 minutes down.",
                    (q("read_model:optibid_projection_postgres_up:min", "{{read_model}}"),),
                    kind="stat",
                    up_down=True,
                    height=5,
                ),
                Panel(
                    "Redis takes the projectors' writes",
                    "Whether Redis accepts the latest values and live updates.",
                    (q("min by (read_model) (optibid_projector_redis_up)", "{{read_model}}"),),
                    kind="stat",
                    up_down=True,
                    height=5,
                ),
            ),
        ),
    ),
)

ISO_HEALTH = Board(
    uid="optibid-iso",
    title="OptiBid / ISO data health",
    description="One ISO's datasets: freshness against each dataset's polling cadence, "
    "records and rejected responses, gaps, revisions and dead letters.",
    iso_variable=True,
    tags=("pipeline", "iso"),
    rows=(
        Row(
            "Freshness",
            (
                Panel(
                    "Last publish, in polling cadences",
                    "Time since each live connector of the ISO last published, divided by its "
                    "dataset's polling cadence. Alert OptibidConnectorStalled above 3.",
                    (
                        q(
                            "iso_dataset:optibid_connector_last_publish_age_seconds{" + ISO + "}"
                            " / on (dataset) group_left () optibid:dataset_cadence_seconds",
                            "{{dataset}}",
                        ),
                    ),
                    thresholds=((3, "red"),),
                    minimum=0,
                ),
                Panel(
                    "Publish latency against the freshness objective",
                    "Mean seconds from an interval's end to its publish over 2 hours, divided "
                    "by the dataset's objective (three cadences). Alert "
                    "OptibidDataFreshnessBreached above 1 for 30 minutes.",
                    (
                        q(
                            "iso_dataset:optibid_connector_publish_latency_seconds:mean2h{"
                            + ISO
                            + "} / on (dataset) group_left () "
                            "optibid:dataset_freshness_objective_seconds",
                            "{{dataset}}",
                        ),
                    ),
                    thresholds=((1, "red"),),
                    minimum=0,
                ),
                Panel(
                    "Seconds since the last publish",
                    "Per dataset of the ISO, beside its polling cadence.",
                    (
                        q(
                            "iso_dataset:optibid_connector_last_publish_age_seconds{" + ISO + "}",
                            "{{dataset}}",
                        ),
                    ),
                    kind="stat",
                    unit="s",
                    width=12,
                    height=5,
                ),
                Panel(
                    "Publish latency p90 (2 h)",
                    "90th percentile of the seconds from an interval's end to its publish.",
                    (
                        q(
                            "iso_dataset:optibid_connector_publish_latency_seconds:p90_2h{"
                            + ISO
                            + "}",
                            "{{dataset}}",
                        ),
                    ),
                    kind="stat",
                    unit="s",
                    width=12,
                    height=5,
                ),
            ),
        ),
        Row(
            "Records",
            (
                Panel(
                    "Records published and processed",
                    "Records per second the ISO's connectors publish, and the stream workers "
                    "take from its raw topics, by dataset.",
                    (
                        q(
                            "sum by (dataset) (rate(optibid_connector_records_total{"
                            + ISO
                            + "}[$__rate_interval]))",
                            "published {{dataset}}",
                        ),
                        q(
                            "sum by (dataset) (rate(optibid_stream_records_total{"
                            + ISO
                            + "}[$__rate_interval]))",
                            "processed {{dataset}}",
                        ),
                    ),
                    unit="reqps",
                ),
                Panel(
                    "Connector responses, by outcome",
                    "ISO responses (files) the connectors handled: published, no_data "
                    "(nothing new yet) or rejected (the parser refused the file).",
                    (
                        q(
                            "sum by (dataset, outcome) (increase(optibid_connector_responses_total{"
                            + ISO
                            + "}[$__rate_interval]))",
                            "{{dataset}} {{outcome}}",
                        ),
                    ),
                    stacked=True,
                ),
                Panel(
                    "Rejected files in the time range",
                    "Responses the parsers refused, by dataset.",
                    (
                        q(
                            "sum by (dataset) (increase(optibid_connector_responses_total{"
                            + ISO
                            + ', outcome="rejected"}[$__range]))',
                            "{{dataset}}",
                        ),
                    ),
                    kind="stat",
                    thresholds=((1, "orange"),),
                    height=5,
                ),
                Panel(
                    "Revision decisions",
                    "What the revision step decided for the ISO's records: new, duplicate, "
                    "correction, unchanged, stale or conflict.",
                    (
                        q(
                            "sum by (dataset, decision) "
                            "(increase(optibid_stream_revision_decisions_total{"
                            + ISO
                            + "}[$__rate_interval]))",
                            "{{dataset}} {{decision}}",
                        ),
                    ),
                    height=5,
                ),
            ),
        ),
        Row(
            "Gaps and dead letters",
            (
                Panel(
                    "Gaps detected and backfills requested",
                    "Gaps the stream workers declared in the ISO's series, and the backfill "
                    "requests sent for them, in the time range.",
                    (
                        q(
                            "sum by (dataset) (increase(optibid_stream_gaps_detected_total{"
                            + ISO
                            + "}[$__range]))",
                            "gaps {{dataset}}",
                        ),
                        q(
                            "sum by (dataset) (increase(optibid_stream_backfill_requests_total{"
                            + ISO
                            + "}[$__range]))",
                            "backfills {{dataset}}",
                        ),
                    ),
                    kind="stat",
                    thresholds=((1, "orange"),),
                    width=12,
                ),
                Panel(
                    "Open gaps (all ISOs)",
                    "Gaps declared and not yet filled, over every ISO: the stream workers keep "
                    "one count.",
                    (q("sum(optibid_stream_gaps_open)", "open gaps"),),
                    thresholds=((1, "orange"),),
                    width=12,
                    minimum=0,
                ),
                Panel(
                    "Dead letters, by dataset and reason",
                    "The ISO's raw records sent to a DLQ, per second over 10 minutes.",
                    (
                        q(
                            "sum by (dataset, reason) "
                            "(iso_dataset_reason:optibid_stream_dead_lettered:rate10m{"
                            + ISO
                            + "})",
                            "{{dataset}} {{reason}}",
                        ),
                    ),
                    unit="reqps",
                ),
                Panel(
                    "Dead-letter ratio",
                    "Share of the ISO's records dead-lettered over 10 minutes, by dataset and "
                    "reason. Alert OptibidStreamDeadLetterSpike above 1 %.",
                    (
                        q(
                            "iso_dataset_reason:optibid_stream_dead_lettered:ratio_rate10m{"
                            + ISO
                            + "}",
                            "{{dataset}} {{reason}}",
                        ),
                    ),
                    unit="percentunit",
                    thresholds=((0.01, "red"),),
                    minimum=0,
                ),
            ),
        ),
    ),
)

API = Board(
    uid="optibid-api",
    title="OptiBid / API",
    description="The query API: traffic by route and status, latency, errors and the "
    "availability objective (99.9 %), caches, rate limits and live updates.",
    tags=("api",),
    rows=(
        Row(
            "Traffic",
            (
                Panel(
                    "Requests, by route and status",
                    "Requests per second by route template and HTTP status.",
                    (
                        q(
                            "sum by (route, status) "
                            "(rate(optibid_api_requests_total[$__rate_interval]))",
                            "{{route}} {{status}}",
                        ),
                    ),
                    unit="reqps",
                    width=16,
                ),
                Panel(
                    "Requests per second",
                    "All routes, 5-minute rate.",
                    (q("optibid_api:requests:rate5m", "requests"),),
                    kind="stat",
                    unit="reqps",
                    width=8,
                ),
            ),
        ),
        Row(
            "Latency",
            (
                Panel(
                    "Latency p50, by route",
                    "Median request latency per route over 5 minutes (histogram).",
                    (q("route:optibid_api_request_seconds:p50_5m", "{{route}}"),),
                    unit="s",
                    width=8,
                ),
                Panel(
                    "Latency p95, by route",
                    "95th percentile per route over 5 minutes (histogram).",
                    (q("route:optibid_api_request_seconds:p95_5m", "{{route}}"),),
                    unit="s",
                    width=8,
                ),
                Panel(
                    "Latency p99, by route",
                    "99th percentile per route over 5 minutes (histogram).",
                    (q("route:optibid_api_request_seconds:p99_5m", "{{route}}"),),
                    unit="s",
                    width=8,
                ),
                Panel(
                    "Latency p99, by status",
                    "99th percentile per answer status over the rate interval: refusals (4xx)"
                    " and failures (5xx) apart from answers served.",
                    (
                        q(
                            "histogram_quantile(0.99, sum by (status, le) (rate("
                            "optibid_api_request_seconds_bucket[$__rate_interval])))",
                            "{{status}}",
                        ),
                    ),
                    unit="s",
                    width=24,
                ),
            ),
        ),
        Row(
            "Errors and the availability objective",
            (
                Panel(
                    "5xx ratio, by route",
                    "Share of a route's requests answered with a 5xx over 5 minutes. Alert "
                    "OptibidApiRoute5xxRatioHigh above 5 % for 10 minutes.",
                    (
                        q(
                            "route:optibid_api_requests_5xx:ratio_rate5m{route!~"
                            + NOT_SLO_ROUTES
                            + "}",
                            "{{route}}",
                        ),
                    ),
                    unit="percentunit",
                    thresholds=((0.05, "red"),),
                    minimum=0,
                ),
                Panel(
                    "Error-budget burn rate",
                    "5xx ratio of the requests the objective counts, divided by the error "
                    f"budget ({ERROR_BUDGET:.1%}): 1 spends 30 days' budget in 30 days. Alerts "
                    f"OptibidApiErrorBudgetSlowBurn (above {SLOW_BURN} over 6 h and 30 m) and "
                    f"OptibidApiErrorBudgetFastBurn (above {FAST_BURN} over 1 h and 5 m).",
                    tuple(
                        q(f"optibid_api:slo_errors:ratio_rate{window} / {ERROR_BUDGET}", window)
                        for window in ("5m", "30m", "1h", "6h")
                    ),
                    thresholds=((SLOW_BURN, "orange"), (FAST_BURN, "red")),
                    minimum=0,
                ),
            ),
        ),
        Row(
            "Caches, limits and live updates",
            (
                Panel(
                    "Cache hit ratio",
                    "Share of lookups each API cache (principal, tier, usage, latest) answered "
                    "without reading PostgreSQL or Redis.",
                    (
                        q(
                            'sum by (cache) (rate(optibid_api_cache_requests_total{result="hit"}'
                            "[$__rate_interval])) / sum by (cache) "
                            "(rate(optibid_api_cache_requests_total[$__rate_interval]))",
                            "{{cache}}",
                        ),
                    ),
                    unit="percentunit",
                    minimum=0,
                ),
                Panel(
                    "Requests refused by the tiers, by reason",
                    "Refusals per second (rate limits, quotas, tier rights) and their share of "
                    "all requests. Alert OptibidRateLimitRejectionSurge above 10 % (and one a "
                    "second) for 10 minutes.",
                    (
                        q("reason:optibid_api_limited:rate5m", "{{reason}} per second"),
                        q("reason:optibid_api_limited:ratio_rate5m", "{{reason}} share"),
                    ),
                    thresholds=((0.1, "red"),),
                    minimum=0,
                ),
                Panel(
                    "Live (SSE) clients",
                    "Server-sent-event clients connected to /v1/live.",
                    (q("sum(optibid_api_live_clients)", "clients"),),
                    kind="stat",
                    width=8,
                    height=5,
                ),
                Panel(
                    "Live updates subscribed to Redis",
                    "Whether the API's Redis subscription for live updates is up.",
                    (q("min(optibid_api_live_subscribed)", "subscription"),),
                    kind="stat",
                    up_down=True,
                    width=8,
                    height=5,
                ),
                Panel(
                    "Requests served unmetered",
                    "Requests served without a rate-limit count while Redis was away "
                    "(professional and enterprise tiers), in the time range.",
                    (q("sum(increase(optibid_api_unmetered_total[$__range]))", "unmetered"),),
                    kind="stat",
                    thresholds=((1, "orange"),),
                    width=8,
                    height=5,
                ),
            ),
        ),
    ),
)

PLATFORM = Board(
    uid="optibid-platform",
    title="OptiBid / Platform",
    description="Identity (sign-ins, commands, the identity projector), usage metering "
    "(usage records, meter windows, the usage projector) and billing (Stripe meter events, "
    "grace periods).",
    tags=("identity", "billing"),
    rows=(
        Row(
            "Sign-ins and identity",
            (
                Panel(
                    "Sign-ins, by status",
                    "Requests to /v1/auth/login per second by HTTP status (401: wrong "
                    "credentials, 429: made to wait).",
                    (
                        q(
                            'sum by (status) (rate(optibid_api_requests_total{route="/v1/auth/'
                            'login"}[$__rate_interval]))',
                            "{{status}}",
                        ),
                    ),
                    unit="reqps",
                ),
                Panel(
                    "Failed sign-ins",
                    "Failed sign-ins per second and their share of all sign-ins (5 minutes). "
                    "Alert OptibidLoginFailureSpike above 0.2 a second and half of them.",
                    (
                        q("optibid_api:login_failures:rate5m", "failures per second"),
                        q("optibid_api:login_failures:ratio_rate5m", "share failed"),
                    ),
                    thresholds=((0.2, "orange"), (0.5, "red")),
                    minimum=0,
                ),
                Panel(
                    "Authentications, by credential and result",
                    "Requests authenticated per second by credential kind (token, api_key, "
                    "none) and result.",
                    (
                        q(
                            "sum by (kind, result) "
                            "(rate(optibid_api_authentications_total[$__rate_interval]))",
                            "{{kind}} {{result}}",
                        ),
                    ),
                    unit="reqps",
                ),
                Panel(
                    "Identity commands, by command and outcome",
                    "Commands the identity handler decided, in the time range.",
                    (
                        q(
                            "sum by (command, outcome) "
                            "(increase(optibid_identity_commands_total[$__range]))",
                            "{{command}} {{outcome}}",
                        ),
                    ),
                    kind="stat",
                ),
                Panel(
                    "Identity projector lag",
                    "Records the identity projector is behind identity.events.",
                    (q("sum(optibid_identity_projector_lag_records)", "identity"),),
                    minimum=0,
                ),
                Panel(
                    "Identity events projected, by type",
                    "Events the identity projector applied per second.",
                    (
                        q(
                            "sum by (type) "
                            "(rate(optibid_identity_projector_events_total[$__rate_interval]))",
                            "{{type}}",
                        ),
                    ),
                    unit="reqps",
                ),
            ),
        ),
        Row(
            "Usage metering",
            (
                Panel(
                    "Usage records handed to Kafka, and dropped",
                    "One usage record per answered request. Dropped: the API's buffer to Kafka "
                    "was full (alert OptibidUsageRecordsDropped on any in 10 minutes).",
                    (
                        q(
                            "sum(rate(optibid_api_usage_records_total[$__rate_interval]))",
                            "handed to Kafka",
                        ),
                        q(
                            "sum(rate(optibid_api_usage_dropped_total[$__rate_interval]))",
                            "dropped",
                        ),
                    ),
                    unit="reqps",
                ),
                Panel(
                    "Usage records dropped (10 minutes)",
                    "Alert OptibidUsageRecordsDropped above 0.",
                    (q("sum(increase(optibid_api_usage_dropped_total[10m]))", "dropped"),),
                    kind="stat",
                    thresholds=((1, "red"),),
                ),
                Panel(
                    "Meter: request records, by outcome",
                    "Request records the meter took: counted, late (counted in a later window) "
                    "or duplicate.",
                    (
                        q(
                            "sum by (outcome) "
                            "(rate(optibid_meter_requests_total[$__rate_interval]))",
                            "{{outcome}}",
                        ),
                    ),
                    unit="reqps",
                ),
                Panel(
                    "Meter windows closed, by clock",
                    "Usage windows the meter closed and sent, by the clock that closed them "
                    "(stream time or wall clock), in the time range.",
                    (
                        q(
                            "sum by (clock) "
                            "(increase(optibid_meter_windows_closed_total[$__range]))",
                            "{{clock}}",
                        ),
                    ),
                    kind="stat",
                ),
                Panel(
                    "Usage windows projected",
                    "Usage windows the usage projector wrote per second, and its lag behind "
                    "usage.windows.",
                    (
                        q(
                            "sum(rate(optibid_usage_projector_windows_total[$__rate_interval]))",
                            "windows written",
                        ),
                        q("sum(optibid_usage_projector_lag_records)", "lag (records)"),
                    ),
                ),
                Panel(
                    "Organisations with an open window",
                    "Organisations the meter holds an open usage window for.",
                    (q("sum(optibid_meter_organizations_open)", "organisations"),),
                    kind="stat",
                ),
            ),
        ),
        Row(
            "Billing",
            (
                Panel(
                    "Stripe meter events, by result",
                    "Usage windows reported to Stripe's Billing Meters in the time range: "
                    "reported, no_customer, empty or failed (retried).",
                    (
                        q(
                            "sum by (result) "
                            "(increase(optibid_billing_meter_events_total[$__range]))",
                            "{{result}}",
                        ),
                    ),
                    kind="stat",
                ),
                Panel(
                    "Grace periods enforced, by outcome",
                    "EnforceGrace commands the billing worker sent for accounts past their "
                    "grace period, in the time range.",
                    (
                        q(
                            "sum by (outcome) "
                            "(increase(optibid_billing_grace_enforced_total[$__range]))",
                            "{{outcome}}",
                        ),
                    ),
                    kind="stat",
                ),
            ),
        ),
    ),
)

BOARDS: dict[str, Board] = {
    "pipeline-overview": PIPELINE,
    "iso-data-health": ISO_HEALTH,
    "api": API,
    "platform": PLATFORM,
}


def render(board: Board) -> str:
    """The dashboard's JSON as committed: sorted keys, indent 2, a trailing newline."""
    model = build(board).build()
    return json.dumps(model, cls=JSONEncoder, indent=2, sort_keys=True) + "\n"


def rendered() -> dict[Path, str]:
    """Every dashboard file and its text."""
    return {OUT / f"{name}.json": render(board) for name, board in BOARDS.items()}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--check", action="store_true", help="Exit 1 when a committed file differs."
    )
    args = parser.parse_args(argv)
    stale = []
    for path, text in rendered().items():
        current = path.read_text(encoding="utf-8") if path.is_file() else None
        if current == text:
            continue
        stale.append(path)
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    for path in stale:
        print(f"{'differs' if args.check else 'written'}: {path}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
