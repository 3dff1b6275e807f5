"""CLI command of the billing worker: `optibid billing` (grace periods enforced, usage
reported to Stripe; see `optibid.billing_jobs`)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from typing import Annotated

import typer

from billing.stripe_gateway import StripeGateway
from identity.bus import CommandBus
from optibid.billing_jobs import GROUP as BILLING_GROUP
from optibid.billing_jobs import GraceSweeper, UsageReporter, every
from optibid.broker_watch import observe_role
from optibid.cli_common import console
from optibid.settings import Settings
from optibid.wiring import prepare_contracts
from schemas.errors import ContractError
from schemas.registry import RegistryClient
from schemas.serde import AvroSerde


def register(app: typer.Typer, settings_of: Callable[[], Settings]) -> None:
    @app.command("billing")
    def billing(
        interval_s: Annotated[
            float, typer.Option(help="Seconds between sweeps for accounts past their grace.")
        ] = 60.0,
        once: Annotated[
            bool,
            typer.Option("--once", help="One sweep, and the usage reported up to the end; stop."),
        ] = False,
        metrics_port: Annotated[
            int | None,
            typer.Option(help="Prometheus metrics port (default OPTIBID_BILLING_METRICS_PORT)."),
        ] = None,
    ) -> None:
        """Enforce the grace period of failed payments and report usage windows to Stripe's
        Billing Meters (when OPTIBID_STRIPE_API_KEY is set), until stopped."""
        settings = settings_of()
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        try:
            catalog = prepare_contracts(settings)
        except ContractError as exc:
            console.print(f"[red]error:[/] {exc}")
            raise typer.Exit(1) from None
        port = settings.billing_metrics_port if metrics_port is None else metrics_port
        group = f"{catalog.prefix}{BILLING_GROUP}"
        observe_role(settings.bootstrap_servers, "billing", settings.metrics_host, port, [group])
        with RegistryClient(settings.schema_registry_url) as registry:
            serde = AvroSerde(registry)
            with CommandBus(settings.bootstrap_servers, serde, catalog) as bus:
                sweeper = GraceSweeper(bus, settings.postgres_dsn, settings.db_schema)
                reporter = None
                if settings.stripe_api_key is not None:
                    gateway = StripeGateway(
                        settings.stripe_api_key.get_secret_value(), settings.stripe_api_base,
                        dict(settings.stripe_prices),
                    )  # fmt: skip
                    reporter = UsageReporter(
                        settings.bootstrap_servers, serde, catalog, settings.postgres_dsn,
                        settings.db_schema, gateway, settings.stripe_meter_event,
                    )  # fmt: skip
                else:
                    console.print("no OPTIBID_STRIPE_API_KEY: usage is not reported to Stripe")
                if once:
                    swept = sweeper.sweep()
                    reported = reporter.run(stop, until_caught_up=True) if reporter else 0
                    console.print(f"{len(swept)} accounts past due; {reported} windows reported")
                    return
                threads = [
                    threading.Thread(
                        target=every, args=(interval_s, stop, sweeper.sweep, "grace"), daemon=True
                    )
                ]
                if reporter is not None:
                    threads.append(threading.Thread(target=reporter.run, args=(stop,), daemon=True))
                for thread in threads:
                    thread.start()
                console.print(f"billing worker on schema {settings.db_schema}")
                stop.wait()
                for thread in threads:
                    thread.join(30)
