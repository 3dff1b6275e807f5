"""`optibid smoke URL`: the post-deployment smoke test (optibid.smoke)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Annotated

import typer
from rich.table import Table

from optibid.cli_common import console
from optibid.settings import Settings
from optibid.smoke import Smoke


def register(app: typer.Typer, settings_of: Callable[[], Settings]) -> None:
    @app.command("smoke")
    def smoke(
        url: Annotated[str, typer.Argument(help="Base URL of the deployed API.")],
        api_key: Annotated[
            str | None,
            typer.Option(
                help="An API key (a viewer's is enough): also check prices and freshness"
                " (default OPTIBID_SMOKE_API_KEY).",
            ),
        ] = None,
        max_age_minutes: Annotated[
            float, typer.Option(help="Longest since each ISO's last connector run.")
        ] = 60.0,
        timeout_s: Annotated[float, typer.Option(help="Seconds each request may take.")] = 10.0,
    ) -> None:
        """Check a deployment: health, readiness, metrics, signing keys, dashboard, security
        headers, credentials required; with an API key, every ISO's latest prices and
        freshness. Exits 1 when any check fails."""
        if api_key is None:
            stored = settings_of().smoke_api_key
            api_key = None if stored is None else stored.get_secret_value()
        job = Smoke(url, api_key, timedelta(minutes=max_age_minutes), timeout_s)
        try:
            results = job.run()
        finally:
            job.close()
        table = Table("check", "result", "ms", "detail")
        for check in results:
            mark = "[green]ok[/]" if check.ok else "[red]FAILED[/]"
            table.add_row(check.name, mark, f"{check.ms:,.0f}", check.detail)
        console.print(table)
        failed = [c.name for c in results if not c.ok]
        summary = {"url": url, "checks": len(results), "failed": failed}
        print(json.dumps(summary))
        if failed:
            raise typer.Exit(1)
