"""Data quality: freshness, gaps, retired series and dead letters."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from api.models.common import Listing, Time


class FreshnessRow(BaseModel):
    """How fresh one ISO dataset is, after its latest connector run."""

    iso: str
    dataset: str
    latest_interval_end_utc: Time | None
    arrival_latency_seconds: float | None
    last_run_id: str
    last_run_finished_utc: Time
    rows_last_run: int
    errors_last_run: int
    last_day_completeness_share: float | None


class FreshnessList(Listing[FreshnessRow]):
    """Freshness per ISO dataset."""


class GapRow(BaseModel):
    """A gap the stream worker detected, and whether a backfill closed it."""

    gap_id: str
    iso: str
    dataset: str
    series_key: str | None
    missing_start_utc: Time
    missing_end_utc: Time
    interval_minutes: int
    missing_intervals: int
    status: Literal["open", "closed", "unrecoverable"]
    reason: str | None = Field(description="Why a backfill gave up (unrecoverable only).")


class GapList(Listing[GapRow]):
    """Gaps in order of their start."""


class SeriesStatusRow(BaseModel):
    """The latest status change of a series."""

    iso: str
    dataset: str
    series_key: str
    status: str = Field(description="RETIRED or ACTIVE.")
    last_interval_start_utc: Time
    interval_minutes: int
    retirement_age_seconds: int
    changed_at_utc: Time


class SeriesStatusList(Listing[SeriesStatusRow]):
    """Series retired, or active again, by ISO, dataset and series."""


class DeadLetterCount(BaseModel):
    """Dead letters of one ISO dataset with one reason."""

    iso: str
    dataset: str
    reason_code: str
    count: int
    latest_utc: Time


class DeadLetterList(Listing[DeadLetterCount]):
    """Dead letters by ISO, dataset and reason, most frequent reason first."""
