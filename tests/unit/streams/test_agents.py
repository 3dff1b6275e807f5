"""Each agent of the stream worker, driven through faust's agent.test_context().

The serde is preloaded with schema ids, so no registry is needed; sends are collected instead
of produced.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import REGISTRY

from schemas.catalog import Dataset, Iso
from streams.app import StreamWorker, WorkerConfig
from streams.gaps import BackfillWindow, SeriesChange
from streams.processor import Output
from tests.unit.streams.factories import T0, raw_lmp

RAW = "energy.optibid.raw.LmpReported"


@pytest.fixture
def worker(tmp_path: Any) -> tuple[StreamWorker, list[Output]]:
    config = WorkerConfig(
        broker="127.0.0.1:1",
        registry_url="http://127.0.0.1:1/apis/ccompat/v7",
        store="memory://",
        data_dir=str(tmp_path),
        app_id="agents-test",
    )
    sw = StreamWorker(config)
    for number, topic in enumerate(sw.catalog, start=1):
        sw.serde.preload(topic.subject, topic.value_schema, number)
    sent: list[Output] = []

    async def collect(out: Output) -> None:
        sent.append(out)

    sw.send = collect  # type: ignore[method-assign]  # collect instead of producing
    sw.send_soon = sent.append  # type: ignore[method-assign,assignment]  # collected, as above
    sw.app.finalize()
    return sw, sent


def encode(sw: StreamWorker, record: dict[str, Any], topic: str) -> bytes:
    spec = next(t for t in sw.catalog if t.name == topic)
    return sw.serde.encoder(spec.subject, spec.value_schema)(record)


def run(coro: Any) -> Any:
    return asyncio.new_event_loop().run_until_complete(coro)


def test_market_agent_publishes_canonical_prices_and_dead_letters_bad_ones(
    worker: tuple[StreamWorker, list[Output]],
) -> None:
    sw, sent = worker
    topic = sw.catalog.raw(Iso.PJM, Dataset.LMP_RT_5MIN).name
    agent = sw.market_agents[topic]
    good = raw_lmp("51288", T0, 31.5)
    misaligned = raw_lmp("51288", T0 + timedelta(minutes=7), 30.0)

    async def drive() -> None:
        async with agent.test_context() as ctx:
            await ctx.put(encode(sw, good, topic), key=b"PJM|RT_5MIN|51288")
            await ctx.put(encode(sw, good, topic), key=b"PJM|RT_5MIN|51288")  # redelivery
            await ctx.put(encode(sw, misaligned, topic), key=b"PJM|RT_5MIN|51288")
            await ctx.put(b"\x00\x00\x00\x00\x01garbage", key=b"PJM|RT_5MIN|51288")

    run(drive())
    by_topic: dict[str, list[Output]] = {}
    for out in sent:
        by_topic.setdefault(out.topic.name, []).append(out)
    [canonical] = by_topic[sw.catalog.core("lmp").name]
    assert canonical.value["lmp_usd_per_mwh"] == 31.5
    assert canonical.value["source_dataset"] == "lmp_rt_5min"
    assert [o.value["location_id"] for o in by_topic[sw.catalog.core("locations").name]] == [
        "51288"
    ]
    dlq = by_topic[sw.catalog.dlq(Iso.PJM, Dataset.LMP_RT_5MIN).name]
    assert [o.value["reason_codes"] for o in dlq] == [["MISALIGNED_INTERVAL"], ["UNDECODABLE"]]
    assert dlq[1].value["original_value"] == b"\x00\x00\x00\x00\x01garbage"
    assert dlq[1].value["original_topic"] == topic


def test_a_revision_publishes_a_correction(worker: tuple[StreamWorker, list[Output]]) -> None:
    sw, sent = worker
    topic = sw.catalog.raw(Iso.PJM, Dataset.LMP_RT_HOURLY).name
    agent = sw.market_agents[topic]
    v1 = raw_lmp(
        "1",
        T0,
        28.348916,
        revision=1,
        dataset="lmp_rt_hourly",
        market="RT_HOURLY",
        minutes=60,
        components=(27.0, 1.0, 0.348916),
    )
    v2 = raw_lmp(
        "1",
        T0,
        40.164347,
        revision=2,
        dataset="lmp_rt_hourly",
        market="RT_HOURLY",
        minutes=60,
        components=(39.0, 1.0, 0.164347),
    )

    async def drive() -> None:
        async with agent.test_context() as ctx:
            for record in (v1, v2, v1):  # v1 again, late: stale
                await ctx.put(encode(sw, record, topic), key=b"PJM|RT_HOURLY|1")

    run(drive())
    lmp = [o.value for o in sent if o.topic.name == sw.catalog.core("lmp").name]
    assert [(v["revision"], v["supersedes_revision"], v["lmp_usd_per_mwh"]) for v in lmp] == [
        (1, None, 28.348916),
        (2, 1, 40.164347),
    ]


def gap_record(gap_id: str, start: datetime) -> dict[str, Any]:
    return {
        "event_id": gap_id,
        "occurred_at_utc": start,
        "recorded_at_utc": start,
        "source": "test",
        "schema_version": 1,
        "gap_id": gap_id,
        "iso": "PJM",
        "dataset": "lmp_rt_5min",
        "series_key": f"PJM|RT_5MIN|{gap_id}",
        "missing_start_utc": start,
        "missing_end_utc": start + timedelta(minutes=15),
        "interval_minutes": 5,
        "missing_intervals": 3,
        "lateness_seconds": 1200,
    }


def test_collect_agent_buffers_gaps_for_one_request(
    worker: tuple[StreamWorker, list[Output]],
) -> None:
    sw, _ = worker
    topic = sw.catalog.ingest("gaps").name

    async def drive() -> None:
        async with sw.collect_agent.test_context() as ctx:
            for node in range(50):
                await ctx.put(encode(sw, gap_record(f"g{node}", T0), topic), key=b"PJM|lmp_rt_5min")

    run(drive())
    [pending] = sw.planner.pending.values()  # the planner is what the agent fills
    assert len(pending) == 50


def test_outcomes_agent_retries_a_failed_window(worker: tuple[StreamWorker, list[Output]]) -> None:
    sw, sent = worker
    topic = sw.catalog.ingest("backfill_completed").name
    # a request this worker sent earlier
    sent_earlier = BackfillWindow(
        "r1", "PJM", "lmp_rt_5min", T0, T0 + timedelta(hours=1), ("g1",), 1
    )
    sw.planner.outstanding["r1"] = (sent_earlier, T0)
    # an outcome as written before it named its attempt and gap ids
    done = {k: v for k, v in failed_outcome("r1", 1, []).items() if k not in ("attempt", "gap_ids")}

    async def drive() -> None:
        async with sw.outcomes_agent.test_context() as ctx:
            await ctx.put(encode(sw, done, topic), key=b"PJM|lmp_rt_5min")

    run(drive())

    run(sw.request_backfills())  # the timer's next tick sends the retry
    [retry] = [o.value for o in sent if o.topic.name == sw.catalog.ingest("backfill_requests").name]
    assert (retry["request_id"], retry["attempt"], retry["gap_ids"]) == ("r1", 2, ["g1"])


def failed_outcome(request_id: str, attempt: int, gap_ids: list[str]) -> dict[str, Any]:
    return {
        "event_id": f"{request_id}#{attempt}",
        "occurred_at_utc": T0,
        "recorded_at_utc": T0,
        "source": "test",
        "schema_version": 1,
        "request_id": request_id,
        "iso": "PJM",
        "dataset": "lmp_rt_5min",
        "window_start_utc": T0,
        "window_end_utc": T0 + timedelta(hours=1),
        "outcome": "FAILED",
        "records_published": 0,
        "reason": "HTTP 503",
        "attempt": attempt,
        "gap_ids": gap_ids,
    }


def test_a_queued_retry_is_in_the_table_and_survives_a_restart(
    worker: tuple[StreamWorker, list[Output]],
) -> None:
    sw, sent = worker
    topic = sw.catalog.ingest("backfill_completed").name
    requests = sw.catalog.ingest("backfill_requests").name

    async def drive(outcome: dict[str, Any]) -> None:
        async with sw.outcomes_agent.test_context() as ctx:
            await ctx.put(encode(sw, outcome, topic), key=b"PJM|lmp_rt_5min")

    # an outcome of a request the worker sent before a restart: the outcome alone says
    # which window and attempt, so it is retried though this planner never saw the request
    run(drive(failed_outcome("r9", 1, ["g7", "g8"])))
    stored = BackfillWindow.from_state(sw.retries["r9"])
    assert (stored.attempt, stored.gap_ids) == (2, ("g7", "g8"))

    sw.planner.retries.clear()  # the worker dies before its tick sends the retry
    sw._restore_retries = True  # ...and starts again: the tables are restored
    run(sw.request_backfills())
    [retry] = [o.value for o in sent if o.topic.name == requests]
    assert (retry["request_id"], retry["attempt"], retry["gap_ids"]) == ("r9", 2, ["g7", "g8"])

    run(drive(failed_outcome("r9", 1, ["g7", "g8"])))  # attempt 1 again: stale, no change
    assert BackfillWindow.from_state(sw.retries["r9"]).attempt == 2
    run(drive(failed_outcome("r9", 2, ["g7", "g8"])))
    assert BackfillWindow.from_state(sw.retries["r9"]).attempt == 3
    run(drive(failed_outcome("r9", 3, ["g7", "g8"])))  # the last attempt: nothing left to retry
    assert "r9" not in sw.retries


def test_freshness_agent_reports_latest_interval_and_latency(
    worker: tuple[StreamWorker, list[Output]],
) -> None:
    sw, sent = worker
    topic = sw.catalog.ingest("connector_runs").name
    finished = datetime(2024, 11, 3, 6, 2, tzinfo=UTC)
    run_event = {
        "event_id": "run-9",
        "occurred_at_utc": finished,
        "recorded_at_utc": finished,
        "source": "connector:pjm",
        "schema_version": 1,
        "run_id": "run-9",
        "iso": "PJM",
        "dataset": "lmp_rt_5min",
        "mode": "LIVE",
        "started_at_utc": finished - timedelta(seconds=5),
        "finished_at_utc": finished,
        "rows_published": 1200,
        "first_interval_start_utc": T0,
        "last_interval_end_utc": T0 + timedelta(hours=2),
        "publish_latency_seconds": 120.0,
        "error_count": 0,
        "errors": [],
    }

    async def drive() -> None:
        async with sw.freshness_agent.test_context() as ctx:
            await ctx.put(encode(sw, run_event, topic), key=b"PJM|lmp_rt_5min")

    run(drive())
    [fresh] = [o for o in sent if o.topic.name == sw.catalog.ingest("freshness").name]
    assert fresh.key == "PJM|lmp_rt_5min"
    assert fresh.value["latest_interval_end_utc"] == T0 + timedelta(hours=2)
    assert fresh.value["arrival_latency_seconds"] == 120.0


def test_the_retired_series_gauge_is_recounted_only_when_it_can_change(
    worker: tuple[StreamWorker, list[Output]], monkeypatch: pytest.MonkeyPatch
) -> None:
    sw, _ = worker
    counts: list[int] = []

    def retired_series() -> dict[tuple[str, str], int]:
        counts.append(1)
        return {("PJM", "lmp_rt_5min"): len(counts)}

    monkeypatch.setattr(sw.processor, "retired_series", retired_series)
    sw._report_series_changes([])  # the first tick after a start counts
    sw._report_series_changes([])  # nothing changed: no O(series) walk
    assert len(counts) == 1
    change = SeriesChange("PJM", "lmp_rt_5min", "PJM|RT_5MIN|1", "RETIRED", T0, 5, T0)
    sw._report_series_changes([change])
    assert len(counts) == 2
    labels = {"iso": "PJM", "dataset": "lmp_rt_5min"}
    assert REGISTRY.get_sample_value("optibid_stream_series_retired", labels) == 2
