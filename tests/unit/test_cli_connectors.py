"""`optibid parse` and the live-source wiring, without servers."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from connectors.errors import ConnectorError
from connectors.sources import SimulatedSource
from optibid.settings import Settings
from optibid.wiring import live_source
from schemas.catalog import Dataset, Iso

PROJECT = Path(__file__).resolve().parents[2]
SHARED_PJM = PROJECT.parent / "shared" / "fixtures" / "iso" / "pjm"


def parse(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "optibid", "parse", *args],
        capture_output=True,
        text=True,
        cwd=PROJECT,
        check=False,
    )


def test_parse_prints_canonical_json_lines(tmp_path: Path) -> None:
    start = datetime(2024, 11, 3, 5, tzinfo=UTC)
    [(name, data)] = list(
        SimulatedSource(Iso.ERCOT, locations=3).fetch(
            Dataset.LMP_DA_HOURLY, start, start + timedelta(hours=2)
        )
    )[:1]
    path = tmp_path / name
    path.write_bytes(data)
    result = parse("ercot", "lmp_da_hourly", str(path))
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines
    for record in lines:
        assert record["iso"] == "ERCOT"
        assert record["market"] == "DA_HOURLY"
        assert record["interval_start_utc"].endswith("Z")
        assert record["interval_minutes"] == 60
        assert record["energy_usd_per_mwh"] is None  # ERCOT publishes no components
        assert "native_fields" not in record


def test_parse_the_recorded_fall_back_day_gives_25_hours() -> None:
    path = SHARED_PJM / "pjm_dataminer_csv_rt_hrl_lmps_PJM-RTO_2024-11-03_dst_fall.csv"
    if not path.is_file():
        pytest.skip(f"recorded payload {path} not present (../shared is absent)")
    result = parse("pjm", "lmp_rt_hourly", str(path), "--native")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    starts = [r["interval_start_utc"] for r in records]
    assert len(starts) == len(set(starts)) == 25
    assert records[0]["native_fields"]["pnode_name"] == "PJM-RTO"


@pytest.mark.parametrize(
    ("name", "text", "dataset", "returncode", "said"),
    [
        # a bad file is named in the error
        (
            "broken.csv",
            "<html><title>Service Unavailable</title></html>",
            "lmp_rt_hourly",
            1,
            ["broken.csv", "Service Unavailable"],
        ),
        # a usage error
        ("x.csv", "a\n1\n", "lmp_rt_15min", 2, ["pjm has no dataset lmp_rt_15min"]),
    ],
    ids=["rejects-a-bad-file-naming-it", "refuses-a-dataset-the-iso-does-not-have"],
)
def test_parse_fails_saying_why(
    tmp_path: Path, name: str, text: str, dataset: str, returncode: int, said: list[str]
) -> None:
    path = tmp_path / name
    path.write_text(text)
    result = parse("pjm", dataset, str(path))
    assert result.returncode == returncode
    assert [part for part in said if part not in result.stderr] == []


def test_live_sources_are_built_from_settings_without_leaking_keys() -> None:
    assert live_source(Settings(), Iso.CAISO) is not None
    with pytest.raises(ConnectorError, match="OPTIBID_PJM_API_KEY"):
        live_source(Settings(), Iso.PJM)
    client = live_source(Settings(pjm_api_key=SecretStr("k-123-secret")), Iso.PJM)
    assert "k-123-secret" not in repr(client)
    assert live_source(Settings(), Iso.ERCOT) is not None
