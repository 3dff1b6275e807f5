"""CLI command of the query API."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Annotated

import typer
import uvicorn
from pydantic import SecretStr

from api.app import create_app, serve
from api.billing import BillingSettings
from api.identity import AuthSettings
from optibid.settings import Settings


def register(app: typer.Typer, settings_of: Callable[[], Settings]) -> None:
    @app.command("api")
    def api(
        port: Annotated[int | None, typer.Option(help="Port (default OPTIBID_API_PORT).")] = None,
    ) -> None:
        """Serve the query API and the dashboard (loopback only unless allowed in settings)."""
        settings = settings_of()
        application = create_app(
            settings.postgres_dsn,
            settings.redis_dsn,
            settings.db_schema,
            max_range=timedelta(days=settings.api_max_range_days),
            heartbeat_s=settings.api_heartbeat_s,
            auth_settings=auth_settings(settings),
            rate_limits=settings.rate_limits,
            billing=billing_settings(settings),
        )
        typer.echo(
            f"OptiBid API on http://{settings.api_host}:{port or settings.api_port}/ "
            "(dashboard at /dashboard/, OpenAPI at /docs)",
            err=True,
        )
        uvicorn.run(
            serve(application),
            host=settings.api_host,
            port=port or settings.api_port,
            log_level=settings.log_level,
            access_log=False,
        )


def auth_settings(settings: Settings) -> AuthSettings:
    return AuthSettings(
        issuer=settings.auth_issuer,
        audience=settings.auth_audience,
        access_lifetime=timedelta(minutes=settings.access_token_minutes),
        bootstrap=settings.bootstrap_servers,
        registry_url=settings.schema_registry_url,
        topic_prefix=settings.topic_prefix,
        command_timeout_s=settings.identity_command_timeout_s,
        cors_origins=tuple(settings.api_cors_origins),
        ring_ttl_s=settings.auth_key_ring_ttl_s,
        public_url=settings.api_public_url or f"http://{settings.api_host}:{settings.api_port}",
    )


def billing_settings(settings: Settings) -> BillingSettings:
    """The API's Stripe connection and operators' organisation, from the settings."""

    def secret(value: SecretStr | None) -> str | None:
        return value.get_secret_value() if value is not None else None

    return BillingSettings(
        stripe_api_key=secret(settings.stripe_api_key),
        stripe_api_base=settings.stripe_api_base,
        webhook_key=secret(settings.stripe_webhook_key),
        prices=dict(settings.stripe_prices),
        platform_org_id=settings.platform_org_id,
    )
