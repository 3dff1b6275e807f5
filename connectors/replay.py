"""Replaying recorded responses (archives, the recorded payloads in ../shared) as if live."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from connectors.records import Record
from connectors.runtime import ConnectorRuntime, RunStats, new_run

SKIP_NAMES = frozenset({"MANIFEST.md", "README.md"})


def replay_files(directory: Path, pattern: str = "*") -> list[Path]:
    """Files under `directory` matching `pattern`, in name order (the replay order)."""
    if not directory.is_dir():
        raise FileNotFoundError(f"replay folder {directory} does not exist")
    return sorted(
        p
        for p in directory.rglob(pattern)
        if p.is_file() and p.name not in SKIP_NAMES and not p.name.startswith(".")
    )


class Pacer:
    """Publishes at `speed` times the data's own pace (interval starts); None means at once."""

    def __init__(self, speed: float | None) -> None:
        self.speed = speed
        self._origin: tuple[float, float] | None = None

    def __call__(self, records: Sequence[Record]) -> None:
        if not self.speed or not records:
            return
        data_time = min(r.interval_start_utc for r in records).timestamp()
        if self._origin is None:
            self._origin = (data_time, time.monotonic())
            return
        data_origin, wall_origin = self._origin
        due = wall_origin + (data_time - data_origin) / self.speed
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)


@dataclass
class ReplaySummary:
    files: int
    skipped_by_checkpoint: int
    rows: int
    rejected: list[str]


def replay(
    runtime: ConnectorRuntime,
    directory: Path,
    *,
    pattern: str = "*",
    speed: float | None = None,
    on_file: Callable[[Path, RunStats], None] | None = None,
) -> ReplaySummary:
    """Publish every file of `directory`; resumes after the last file of a previous replay.

    Each file is one run: its records are published and acknowledged, then the checkpoint
    advances past it, then its run event goes out. A file that does not parse publishes
    nothing; its error is in the run event and the summary.
    """
    stream = f"replay:{directory.resolve()}"
    files = replay_files(directory, pattern)
    checkpoint = runtime.load_checkpoint(stream)
    done_upto = checkpoint.last_source if checkpoint else None
    pacer = Pacer(speed)
    summary = ReplaySummary(0, 0, 0, [])
    for path in files:
        name = str(path.relative_to(directory))
        if done_upto is not None and name <= done_upto:
            summary.skipped_by_checkpoint += 1
            continue
        stats = new_run("REPLAY")
        runtime.handle_payload(path.name, path.read_bytes(), stats, before_publish=pacer)
        runtime.save_checkpoint(stream, stats.run_id, last_source=name)
        runtime.complete_run(stats)
        summary.files += 1
        summary.rows += stats.rows
        summary.rejected += stats.errors
        if on_file:
            on_file(path, stats)
    return summary
