"""The demo for a long while, every role's resident memory sampled: does anything grow?

Runs `optibid demo` (the local stack, the simulated days and, where ../shared is present, the
recorded ISO responses with their own dates, then the stream worker, KPI worker, projectors and
API with live feeds) for `--minutes` (30), and samples the resident memory (VmRSS) of each of the
project's roles every `--every` seconds: the demo process itself (feeds and live pollers), the
worker, the KPI worker, the projectors and the API; the stack's servers (the JVMs of Kafka and
the registry, PostgreSQL's postmaster, Redis) are sampled for information.

Growth per role is the least-squares slope of its samples over the second half of the run
(after catch-up on the fed days), in MiB per hour. The project's target: no role above 1 GiB
at any sample. `ratio` is 1 GiB over the largest peak of a project role (>= 1 meets it).

Run: `python bench/soak.py [--minutes 30] [--every 10]`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, arguments, emit
from optibid import stack
from optibid.demo import SHARED_ISO
from optibid.settings import Settings

CEILING_MIB = 1024.0
# the demo's children by their optibid command (argv after `-m optibid`)
ROLE_OF_COMMAND = {"worker": "worker", "kpis": "kpis", "project": "projectors", "api": "api"}


@dataclass
class Samples:
    times_s: list[float] = field(default_factory=list)
    rss_mib: list[float] = field(default_factory=list)

    def add(self, at: float, value: float) -> None:
        self.times_s.append(at)
        self.rss_mib.append(value)

    def slope_mib_per_hour(self) -> float:
        """Least-squares slope over the second half of the samples."""
        half = len(self.times_s) // 2
        xs, ys = self.times_s[half:], self.rss_mib[half:]
        if len(xs) < 3:
            return float("nan")
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        var = sum((x - mx) ** 2 for x in xs)
        cov = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
        return cov / var * 3600 if var else 0.0


def rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def children(parent: int) -> dict[str, int]:
    """The demo's role processes: role -> pid."""
    found: dict[str, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid != parent or b"optibid" not in argv:
            continue
        command = argv[argv.index(b"optibid") + 1].decode() if b"optibid" in argv[:-1] else ""
        if command in ROLE_OF_COMMAND:
            found[ROLE_OF_COMMAND[command]] = int(entry.name)
    return found


def main() -> None:
    args = arguments(__doc__, minutes=30.0, every=10.0)
    settings = Settings()
    duration = args.minutes * 60
    print(
        f"demo for {args.minutes:g} min; recorded responses "
        + ("included" if SHARED_ISO.is_dir() else f"absent ({SHARED_ISO})"),
        flush=True,
    )
    log = (settings.state_dir / "logs").resolve()
    log.mkdir(parents=True, exist_ok=True)
    with (log / "bench-soak-demo.log").open("ab") as out:
        demo = subprocess.Popen(
            [sys.executable, "-m", "optibid", "demo", "--duration", str(int(duration))],
            cwd=ROOT,
            env={**os.environ},
            stdout=out,
            stderr=out,
        )
    samples: dict[str, Samples] = {}
    began = time.monotonic()
    path_started: float | None = None
    try:
        while demo.poll() is None and time.monotonic() - began < duration + 600:
            now = time.monotonic() - began
            pids = {"demo": demo.pid, **children(demo.pid)}
            if len(pids) > 1 and path_started is None:
                path_started = now
            for server in stack.status(settings):
                if server.pid is not None:
                    pids[f"{server.name} (server)"] = server.pid
            for role, pid in pids.items():
                value = rss_mib(pid)
                if value is not None:
                    samples.setdefault(role, Samples()).add(now, value)
            time.sleep(args.every)
    finally:
        if demo.poll() is None:
            demo.send_signal(signal.SIGINT)
            demo.wait(120)
    if demo.returncode not in (0, None):
        raise SystemExit(f"the demo exited with {demo.returncode}; see {log}/bench-soak-demo.log")

    figures: dict[str, float | str | None] = {"benchmark": "soak", "minutes": args.minutes}
    project_peak = 0.0
    print(f"{'role':<20} {'first':>8} {'last':>8} {'peak':>8} {'MiB/h':>8}  (MiB)")
    for role, series in sorted(samples.items()):
        peak = max(series.rss_mib)
        slope = series.slope_mib_per_hour()
        print(
            f"{role:<20} {series.rss_mib[0]:8.1f} {series.rss_mib[-1]:8.1f} {peak:8.1f}"
            f" {slope:8.1f}"
        )
        name = role.replace(" (server)", "_server")
        figures[f"{name}_peak_mib"] = round(peak, 1)
        figures[f"{name}_growth_mib_per_hour"] = round(slope, 1) if slope == slope else None
        if "(server)" not in role:
            project_peak = max(project_peak, peak)
    figures["path_started_after_s"] = round(path_started, 1) if path_started else None
    figures["project_peak_mib"] = round(project_peak, 1)
    figures["ratio"] = round(CEILING_MIB / project_peak, 3) if project_peak else None
    emit(figures)


if __name__ == "__main__":
    main()
