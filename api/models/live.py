"""The data of the live stream's events: the row the projector wrote to Redis, with its event
envelope, as JSON."""

from __future__ import annotations

from pydantic import BaseModel

from api.models.common import Time
from api.models.latest import KpiLatestRow, LmpFields


class LmpUpdate(LmpFields):
    """Data of an `lmp` event: a new latest LMP interval."""

    event_id: str
    occurred_at_utc: Time
    recorded_at_utc: Time
    source: str


class KpiUpdate(KpiLatestRow):
    """Data of a `kpi` event: a new latest KPI window."""

    event_id: str
    occurred_at_utc: Time
    recorded_at_utc: Time
    source: str


LIVE_MODELS: tuple[type[BaseModel], ...] = (LmpUpdate, KpiUpdate)
