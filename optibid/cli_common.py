"""What the CLI's command modules share: the stderr console, ISO and dataset arguments, UTC times
given on the command line, and the progress bar."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from schemas.catalog import ISO_DATASETS, Dataset, Iso

console = Console(stderr=True)
IsoArg = Annotated[Iso, typer.Argument(help="pjm, caiso or ercot", case_sensitive=False)]
DatasetArg = Annotated[Dataset, typer.Argument(help="lmp_da_hourly, lmp_rt_5min, ...")]


def check_dataset(iso: Iso, dataset: Dataset) -> None:
    if dataset not in ISO_DATASETS[iso]:
        known = ", ".join(d.value for d in ISO_DATASETS[iso])
        console.print(f"[red]error:[/] {iso.value} has no dataset {dataset.value}; it has {known}")
        raise typer.Exit(2)


def utc_time(value: str, option: str) -> datetime:
    """The value of `--option`: a date (UTC midnight, not local) or an ISO-8601 time, naive
    times being UTC; anything else ends the command with exit code 2."""
    try:
        if len(value) == len("YYYY-MM-DD"):
            return datetime.combine(date.fromisoformat(value), time(), tzinfo=UTC)
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        console.print(f"[red]error:[/] --{option} {value!r} is not a date or an ISO-8601 time")
        raise typer.Exit(2) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def progress(description: str, *counts: ProgressColumn) -> Progress:
    """A progress bar on stderr: `description`, the bar, done of total, the `counts` columns,
    time elapsed and time remaining."""
    return Progress(
        TextColumn(description),
        BarColumn(),
        MofNCompleteColumn(),
        *counts,
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    )
