"""The README's settings table and quick start stay true to the code."""

from __future__ import annotations

import re
from pathlib import Path

from optibid.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def test_every_setting_is_documented_with_its_variable() -> None:
    documented = set(re.findall(r"`(OPTIBID_[A-Z_]+)`", README))
    expected = {f"OPTIBID_{name.upper()}" for name in Settings.model_fields}
    assert expected - documented == set()
    assert documented - expected == set()


def test_ci_runs_the_readme_test_command() -> None:
    quick_start = README.split("## Quick start", 1)[1].split("##", 1)[0]
    commands = re.findall(r"^(make \w+)", quick_start, flags=re.MULTILINE)
    assert commands == ["make demo", "make test"]
    assert "\nmake test\n" in (ROOT / ".ci" / "run").read_text()


def test_the_readme_names_every_package_the_set_up_installs() -> None:
    setup = (ROOT / "ops" / "setup.sh").read_text()
    packages = set(re.findall(r"^\s*need ([a-z0-9.+-]+) ", setup, flags=re.MULTILINE))
    assert {"redis-server", "postgresql", "chromium"} <= packages
    prerequisites = README.split("## Prerequisites", 1)[1].split("##", 1)[0]
    assert {p for p in packages if p not in prerequisites} == set()
