"""The Helm chart stays true to the code: commands, settings, (ISO, dataset) pairs, ports."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import typer
import yaml

from optibid.cli import app
from optibid.settings import Settings
from schemas.catalog import ISO_DATASETS, Dataset, Iso

CHART = Path(__file__).resolve().parents[2] / "ops" / "helm" / "optibid"
VALUES: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text())
TEMPLATES = "\n".join(p.read_text() for p in sorted((CHART / "templates").iterdir()))
VARIABLES = {f"OPTIBID_{name.upper()}" for name in Settings.model_fields}


def command_of(args: list[str]) -> tuple[list[str], Any]:
    """The command words `optibid ARGS` resolves (sub-commands followed), and the command."""
    command: Any = typer.main.get_command(app)
    words = []
    for word in args:
        group = getattr(command, "commands", None)  # a group of sub-commands
        if group is None or word not in group:
            break
        command = group[word]
        words.append(word)
    return words, command


def test_every_role_runs_a_real_command_with_its_metrics_port() -> None:
    for role, spec in VALUES["roles"].items():
        words, command = command_of(spec["args"])
        assert words == spec["args"][:1], role
        options = {o for p in command.params for o in getattr(p, "opts", [])}
        for flag in (a for a in spec["args"] if a.startswith("--")):
            assert flag in options, f"{role}: optibid {spec['args'][0]} has no {flag}"
        port = spec["args"][spec["args"].index("--metrics-port") + 1]
        assert int(port) == spec["metricsPort"], role
    for args in (["topics", "create"], ["schemas", "register"], ["db", "migrate"], ["api"]):
        assert command_of(args)[0] == args
    _, connect = command_of(["connect"])
    assert "--live" in {o for p in connect.params for o in getattr(p, "opts", [])}


def test_settings_and_environment_names_are_real_settings() -> None:
    assert set(VALUES["settings"]) <= VARIABLES
    used = set(re.findall(r"OPTIBID_[A-Z_]+", TEMPLATES)) - {"OPTIBID_"}
    assert used <= VARIABLES, used - VARIABLES


def test_connectors_name_datasets_their_iso_publishes() -> None:
    for connector in VALUES["connectors"]:
        iso, dataset = Iso(connector["iso"]), Dataset(connector["dataset"])
        assert dataset in ISO_DATASETS[iso], connector
    pairs = [(c["iso"], c["dataset"]) for c in VALUES["connectors"]]
    assert len(pairs) == len(set(pairs))  # one poller per checkpoint
