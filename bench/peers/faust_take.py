"""The public-API contender of bench/take.py: the market worker's per-record work in a faust app
that uses nothing but faust-streaming's public API.

One agent on the raw topic iterates `stream.take_events(max, within)`: faust's `take()` batching
(the same buffer, the same acking of every event of a batch after the agent's body has handled
it, when it asks for the next batch), yielding the events where `take()` yields their values,
because the market step needs each record's partition, offset and timestamp (its state records
the offset that set it; expiry runs per partition). For each record of a batch it runs the
worker's own MarketProcessor, built from the worker's own config (`worker_config`), over the
same serde (decode, validate, revisions, normalise, locations), encodes each output as the
worker does and hands it to faust with `Topic.send_soon()` (`--send send`: `Topic.send()`,
which measured slower), to a topic of its own: `<output topic><suffix>`. The state lives in
two faust Tables, `revisions` and `locations`, written through their mapping API by the
processor; commits are faust's own (acks, `broker_commit_every`, the commit interval).

A table written from a `take()` batch must be built with `use_partitioner=True` and the memory
store: in the agent's body there is no current event (faust sets it in the task that fills the
take buffer), so a default table refuses the write ("Cannot modify table key from outside of
stream iteration") and a RocksDB store asserts on it. The changelog partition of a key is then
its hash, not the partition of the source record that set it.

The app's settings are those of the project's worker (`streams.runtime.app.faust_app`): acks
from all replicas, lz4, 50 ms linger, 1 MiB batches, a commit every 5,000 acks, fetches of at
most `--max` records, 16,384 buffered records per partition. Its web server is off.

Run by bench/take.py as `python bench/peers/faust_take.py --app-id ID --source TOPIC` with
OPTIBID_TOPIC_PREFIX (and the stack's settings) in the environment; it runs until stopped.
Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import Any, cast

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import faust
from faust.types import EventT, StreamT

from optibid.cli_streams import worker_config
from optibid.settings import Settings
from schemas.catalog import TopicCatalog, TopicSpec
from schemas.contracts import ContractSet
from schemas.registry import RegistryClient
from schemas.serde import AvroSerde, Encoder
from streams.app import market_processor, market_step
from streams.processor import Output
from streams.runtime.app import ensure_changelogs
from streams.runtime.registry import await_writer_schemas

REPORT_EVERY = 20_000  # records between two progress lines


def build_app(args: argparse.Namespace, settings: Settings) -> faust.App:
    """A faust App with the project worker's settings, faust's own Table class and store."""
    for noisy in ("aiokafka", "faust", "mode"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    data_dir = settings.state_dir / "bench" / args.app_id
    data_dir.mkdir(parents=True, exist_ok=True)
    return faust.App(
        args.app_id,
        broker=[f"kafka://{b}" for b in settings.bootstrap_servers.split(",")],
        store=args.store,
        datadir=str(data_dir),
        topic_partitions=6,
        topic_replication_factor=1,
        producer_acks=-1,
        consumer_auto_offset_reset="earliest",
        web_enabled=False,
        producer_linger=0.05,
        producer_max_batch_size=1_048_576,
        producer_compression_type="lz4",
        broker_commit_every=5_000,
        broker_max_poll_records=args.max,
        stream_buffer_maxsize=16_384,
    )


class TakeContender:
    """The app, its tables and its one agent."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.settings = Settings()
        config = worker_config(
            self.settings, app_id=args.app_id, store=args.store, web_port=0
        )  # the worker's validation, lateness, retention and retirement
        self.catalog = TopicCatalog(config.topic_prefix)
        self.serde = AvroSerde(RegistryClient(config.registry_url), ContractSet())
        self.processor = market_processor(config, self.catalog, self.serde)
        self.app = build_app(args, self.settings)
        partitioned = True  # see the module docstring
        self.revisions = self.app.Table(
            "revisions", default=None, partitions=6, use_partitioner=partitioned
        )
        self.locations = self.app.Table(
            "locations", default=None, partitions=6, use_partitioner=partitioned
        )
        self._encoders: dict[str, Encoder] = {}
        self._targets: dict[str, faust.TopicT] = {}
        self.seen = 0
        self.began = 0.0
        source = self.bytes_topic(args.source)
        self.app.agent(source, name="market-take")(self.market)

    def bytes_topic(self, name: str) -> faust.TopicT:
        return self.app.topic(
            name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
        )

    def prepare(self) -> None:
        """Resolve, at start, the schema id of every topic the market step writes (as the
        worker's `prepare` does) and create the tables' changelog topics (as `optibid worker`
        does before it starts)."""
        for spec in self.catalog:
            layer = spec.name.removeprefix(self.catalog.prefix).split(".")[0]
            if layer in ("core", "dlq"):
                self.encoder(spec)
        ensure_changelogs(self.app, self.settings.bootstrap_servers)

    def encoder(self, spec: TopicSpec) -> Encoder:
        encoder = self._encoders.get(spec.name)
        if encoder is None:
            encoder = self._encoders[spec.name] = self.serde.encoder(
                spec.subject, spec.value_schema
            )
        return encoder

    def target(self, spec: TopicSpec) -> faust.TopicT:
        """This contender's own topic for what the worker writes to `spec`."""
        topic = self._targets.get(spec.name)
        if topic is None:
            topic = self._targets[spec.name] = self.bytes_topic(spec.name + self.args.suffix)
        return topic

    def outputs(self, event: EventT[bytes]) -> list[Output]:
        """The market step of one raw record, as the worker's `process_one`."""
        return market_step(self.processor, event.message, self.revisions, self.locations)

    async def market(self, stream: StreamT[bytes]) -> None:
        soon = self.args.send == "send_soon"
        batches = cast(faust.Stream[bytes], stream).take_events  # StreamT does not declare it
        async for events in batches(self.args.max, within=self.args.within):
            await await_writer_schemas(self.serde, [[event.message for event in events]])
            for event in events:
                for out in self.outputs(event):
                    key, value = out.key.encode(), self.encoder(out.topic)(out.value)
                    if soon:
                        self.target(out.topic).send_soon(key=key, value=value)
                    else:
                        await self.target(out.topic).send(key=key, value=value)
            self.report(len(events))

    def report(self, count: int) -> None:
        if not self.seen:
            self.began = time.monotonic()
        before, self.seen = self.seen, self.seen + count
        if self.seen // REPORT_EVERY != before // REPORT_EVERY:
            elapsed = time.monotonic() - self.began
            rate = (self.seen - count) / elapsed if elapsed > 0 else float("nan")
            print(
                f"take: {self.seen} records in batches of up to {self.args.max}, "
                f"{rate:.0f} records/s since the first batch",
                file=sys.stderr,
                flush=True,
            )


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--app-id", required=True, help="consumer group and table namespace")
    parser.add_argument("--source", required=True, help="the raw topic to read")
    parser.add_argument("--suffix", default=".take", help="appended to each output topic")
    parser.add_argument("--max", type=int, default=2_000, help="records per take() batch")
    parser.add_argument("--within", type=float, default=0.1, help="take()'s timeout, seconds")
    parser.add_argument("--send", choices=("send", "send_soon"), default="send_soon")
    parser.add_argument("--store", default="memory://", help="the tables' store")
    parser.add_argument("--loglevel", default="warn")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> Any:
    args = parse(argv)
    contender = TakeContender(args)
    contender.prepare()
    worker = faust.Worker(contender.app, loglevel=args.loglevel)
    return worker.execute_from_commandline()


if __name__ == "__main__":
    main()
