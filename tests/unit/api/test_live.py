"""The live hub's resume rules and client streams, without Redis."""

from __future__ import annotations

import asyncio
from typing import Any

from api.live import LiveHub, stream


def hub() -> LiveHub:
    return LiveHub("redis://127.0.0.1:1/0", {"c:lmp": "lmp"}, capacity=3, epoch="e1")


def test_resume_replays_what_the_buffer_holds_and_asks_for_a_snapshot_otherwise() -> None:
    h = hub()
    for n in range(5):
        h.publish("lmp", {"location_id": str(n)})
    # the buffer holds 3, 4, 5: a client that saw 3 missed 4 and 5
    assert [u.id for u in h.since("e1-3") or []] == ["e1-4", "e1-5"]
    assert h.since("e1-5") == []
    assert h.since("e1-1") is None  # older than the buffer
    assert h.since("e0-4") is None  # another process
    assert h.since(None) is None


def test_a_client_gets_the_snapshot_then_matching_updates_with_heartbeats() -> None:
    h = hub()

    async def scenario() -> list[str]:
        frames: list[str] = []

        def snapshot() -> list[tuple[str, dict[str, Any]]]:
            return [
                ("lmp", {"location_id": "A", "lmp_usd_per_mwh": 1.0}),
                ("lmp", {"location_id": "B"}),
            ]

        async def connected() -> bool:
            return len(frames) > 4

        body = stream(h, {"lmp"}, {"A"}, None, snapshot, 0.05, connected)
        frames.append(await body.__anext__())  # retry and a comment
        frames.append(await body.__anext__())  # the snapshot of A (B filtered out)
        h.publish("lmp", {"location_id": "B"})
        h.publish("kpi", {"location_id": "A"})
        h.publish("lmp", {"location_id": "A", "lmp_usd_per_mwh": 2.0})
        frames.append(await body.__anext__())
        frames.append(await body.__anext__())  # nothing more for A: a heartbeat
        await body.aclose()
        return frames

    frames = asyncio.new_event_loop().run_until_complete(scenario())
    assert frames[0].startswith("retry: 2000")
    assert '"lmp_usd_per_mwh": 1.0' in frames[1]
    assert frames[2].startswith("id: e1-3\nevent: lmp\n")
    assert '"lmp_usd_per_mwh": 2.0' in frames[2]
    assert frames[3].startswith(": heartbeat")
