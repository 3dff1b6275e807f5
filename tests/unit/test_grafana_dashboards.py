"""The Grafana dashboards (ops/grafana) stay generated, complete and true to the code: the
committed JSON is the generator's output; every panel has a data source and a query; every
metric, label and recorded series a query names exists (as tests/unit/test_alert_rules.py checks
the rules); every expression parses (promtool); the local Prometheus configuration scrapes every
role of the demo on that role's default port."""

from __future__ import annotations

import functools
import importlib.util
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import typer
import yaml

from optibid.cli import app as cli_app
from optibid.demo import PROCESSES
from optibid.settings import Settings
from tests.unit.test_alert_rules import (
    GROUPING,
    MATCHER,
    METRIC,
    RECORDED,
    SCRAPE_LABELS,
    SELECTOR,
    code_metrics,
    exposed,
    promtool,
    recordings,
)

ROOT = Path(__file__).resolve().parents[2]
GENERATOR = ROOT / "ops" / "grafana" / "dashboards.py"
DASHBOARDS = ROOT / "ops" / "grafana" / "dashboards"
PROMETHEUS_CONFIG = ROOT / "ops" / "prometheus" / "prometheus.yml"
REGENERATE = "python3 -m uv run python -m ops.grafana.dashboards"
# Series Prometheus makes itself, not the code.
PROMETHEUS_SERIES = {"up"}
RECORDED_SELECTOR = re.compile(r"(?<![\w:])([a-z_][a-z0-9_]*:[a-z0-9_:]+)\{([^}]*)\}")
# What the dashboards' template variables stand for when an expression is run or checked.
ISOS = ("pjm", "caiso", "ercot")
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "10s", "$__range": "5m"}


def generator() -> ModuleType:
    """ops/grafana/dashboards.py, loaded from its path (`ops` is no installed package)."""
    spec = importlib.util.spec_from_file_location("optibid_grafana_dashboards", GENERATOR)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@dataclass(frozen=True)
class Expression:
    dashboard: str
    panel: str
    expr: str

    def where(self) -> str:
        return f"{self.dashboard} / {self.panel!r}: {self.expr}"


def committed() -> dict[str, dict[str, Any]]:
    return {
        path.name: json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(DASHBOARDS.glob("*.json"))
    }


def panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in board.get("panels", []):
        if panel.get("type") == "row":
            yield from panel.get("panels", [])
        else:
            yield panel


def expressions() -> list[Expression]:
    """Every panel query of the committed dashboards."""
    return [
        Expression(board["title"], panel["title"], target["expr"])
        for board in committed().values()
        for panel in panels(board)
        for target in panel.get("targets", [])
    ]


def concrete(expr: str, iso: str = ISOS[0]) -> list[str]:
    """The expression as Prometheus runs it: Grafana's variables replaced, once per ISO where
    it names the `iso` variable."""
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    if "$iso" in expr:
        return [expr.replace("$iso", each) for each in ISOS]
    assert "$" not in expr, f"a variable this test does not know: {expr}"
    return [expr]


@functools.cache
def recorded_labels() -> dict[str, set[str]]:
    """Each recorded series' label names: its rules' own labels, their grouping labels, and
    the labels of the metrics and recorded series their expressions read."""
    series = exposed(code_metrics())
    out: dict[str, set[str]] = {}
    for rule in recordings():  # in file order: a rule reads only series recorded before it
        labels = set(rule.get("labels", {}))
        labels |= {
            label.strip()
            for clause in GROUPING.findall(rule["expr"])
            for label in clause.split(",")
            if label.strip()
        }
        if not re.search(r"\b(sum|min|max|avg|count|histogram_quantile)\b", rule["expr"]):
            for name in METRIC.findall(rule["expr"]):
                labels |= series.get(name, set())
            for name in RECORDED.findall(rule["expr"]):
                labels |= out.get(name, set())
        out.setdefault(rule["record"], set()).update(labels)
    return out


# --- generated and complete -------------------------------------------------------------------


def test_committed_json_is_the_generators_output() -> None:
    module = generator()
    files = module.rendered()
    names = {path.name for path in files}
    assert names == set(committed()), f"dashboards differ from the generator's: run {REGENERATE}"
    for path, text in files.items():
        current = path.read_text(encoding="utf-8")
        assert current == text, f"{path.name} is not the generator's output: run {REGENERATE}"


def test_output_is_deterministic() -> None:
    module = generator()
    assert module.rendered() == module.rendered()
    for text in module.rendered().values():
        assert text.endswith("}\n")
        assert json.dumps(json.loads(text), indent=2, sort_keys=True) + "\n" == text


def test_four_dashboards_with_unique_uids() -> None:
    boards = committed()
    assert set(boards) == {
        "pipeline-overview.json",
        "iso-data-health.json",
        "api.json",
        "platform.json",
    }
    uids = [board["uid"] for board in boards.values()]
    assert len(set(uids)) == len(uids)


def test_every_panel_has_a_datasource_and_a_query() -> None:
    for name, board in committed().items():
        variables = {v["name"]: v for v in board["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource", name
        assert variables["datasource"]["query"] == "prometheus", name
        ids = [panel["id"] for panel in board["panels"]]
        assert len(ids) == len(set(ids)), f"{name}: a panel id is used twice"
        for panel in panels(board):
            where = f"{name} / {panel['title']!r}"
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, where
            assert panel.get("targets"), f"{where}: no query"
            assert panel.get("description"), f"{where}: no description"
            assert panel["fieldConfig"]["defaults"].get("unit"), f"{where}: no unit"
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == "${datasource}", where
                assert target["expr"].strip(), f"{where}: an empty query"


def test_the_iso_dashboard_has_its_variable_and_uses_it() -> None:
    board = committed()["iso-data-health.json"]
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["iso"]["type"] == "query"
    for panel in panels(board):
        if "(all ISOs)" in panel["title"]:
            continue
        for target in panel["targets"]:
            assert "$iso" in target["expr"], f"{panel['title']!r} does not select the ISO"


# --- true to the code -------------------------------------------------------------------------


def test_every_metric_is_defined_in_the_code_and_named_as_scraped() -> None:
    series = exposed(code_metrics())
    unknown = sorted(
        {
            f"{name} ({e.where()})"
            for e in expressions()
            for name in METRIC.findall(e.expr)
            if name not in series
        }
    )
    assert not unknown, f"not a series the code exposes: {unknown}"


def test_every_recorded_series_is_recorded() -> None:
    recorded = {rule["record"] for rule in recordings()}
    for e in expressions():
        used = set(RECORDED.findall(e.expr))
        assert used <= recorded, f"{e.where()}: not recorded by the rules: {used - recorded}"


def test_every_series_name_is_known() -> None:
    """A bare word read as a series is a metric of the code, a recorded series or one that
    Prometheus makes itself."""
    known = set(exposed(code_metrics())) | set(recorded_labels()) | PROMETHEUS_SERIES
    word = re.compile(r"(?<![\w:$\"{])([a-z_][a-z0-9_:]*)\s*(\{|\[|\)|$| [/*+-]| or | and )")
    functions = {"sum", "min", "max", "rate", "increase", "histogram_quantile", "time"}
    for e in expressions():
        stripped = re.sub(r'"[^"]*"', '""', e.expr)
        stripped = re.sub(
            r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", stripped
        )
        for name, _ in word.findall(stripped):
            if name in functions or name in {"by", "on", "or", "and"}:
                continue
            assert name in known, f"{e.where()}: unknown series {name}"


def test_label_matchers_name_labels_of_their_series() -> None:
    series = exposed(code_metrics())
    recorded = recorded_labels()
    for e in expressions():
        for name, matchers in SELECTOR.findall(e.expr):
            labels = set(MATCHER.findall(matchers))
            allowed = series.get(name, set()) | SCRAPE_LABELS
            assert labels <= allowed, f"{e.where()}: {name} has no label {labels - allowed}"
        for name, matchers in RECORDED_SELECTOR.findall(e.expr):
            labels = set(MATCHER.findall(matchers))
            allowed = recorded.get(name, set()) | SCRAPE_LABELS
            assert labels <= allowed, f"{e.where()}: {name} has no label {labels - allowed}"


def test_grouping_labels_are_labels_of_the_series_grouped() -> None:
    series = exposed(code_metrics())
    recorded = recorded_labels()
    for e in expressions():
        available = set(SCRAPE_LABELS)
        for name in METRIC.findall(e.expr):
            available |= series.get(name, set())
        for name in RECORDED.findall(e.expr):
            available |= recorded.get(name, set())
        for clause in GROUPING.findall(e.expr):
            labels = {label.strip() for label in clause.split(",") if label.strip()}
            assert labels <= available, f"{e.where()}: no label {labels - available} there"


def test_legends_name_labels_the_query_keeps() -> None:
    for board in committed().values():
        for panel in panels(board):
            for target in panel["targets"]:
                legend = target.get("legendFormat", "")
                named = set(re.findall(r"\{\{\s*(\w+)\s*\}\}", legend))
                if not named:
                    continue
                kept = {
                    label.strip()
                    for clause in re.findall(r"\bby\s*\(([^)]*)\)", target["expr"])
                    for label in clause.split(",")
                }
                if "by (" not in target["expr"]:
                    continue  # a recorded series keeps its own labels (checked above)
                assert named <= kept, f"{panel['title']!r}: legend {legend} names {named - kept}"


def test_every_expression_parses(tmp_path: Path) -> None:
    """promtool checks each expression (its variables replaced) as a recording rule's."""
    rules = [
        {"record": f"dashboard:expression_{index}:check", "expr": expr}
        for index, e in enumerate(expressions())
        for expr in concrete(e.expr)
    ]
    path = tmp_path / "dashboard-expressions.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    result = subprocess.run(
        [promtool(), "check", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- the local Prometheus ---------------------------------------------------------------------


def prometheus_config() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(PROMETHEUS_CONFIG.read_text(encoding="utf-8"))
    return data


def scrape_ports() -> dict[str, int]:
    """Each job's port in ops/prometheus/prometheus.yml."""
    ports = {}
    for job in prometheus_config()["scrape_configs"]:
        (static,) = job["static_configs"]
        (target,) = static["targets"]
        host, _, port = target.rpartition(":")
        assert host == "127.0.0.1", f"{job['job_name']}: scrape loopback only, not {host}"
        ports[job["job_name"]] = int(port)
    return ports


def default_metrics_port(args: tuple[str, ...]) -> int:
    """The Prometheus port `optibid ARGS` serves on by default: its --metrics-port, or the
    setting that option's help names, or the API's own port."""
    command: Any = typer.main.get_command(cli_app)
    for arg in args:  # down the subcommands; the rest are arguments (`project all`)
        if arg not in getattr(command, "commands", {}):
            break
        command = command.commands[arg]
    settings = Settings.model_fields
    for param in command.params:
        if param.name == "metrics_port":
            if isinstance(param.default, int):
                return param.default
            named = re.search(r"OPTIBID_(\w+_METRICS_PORT)", str(getattr(param, "help", "")))
            assert named is not None, f"optibid {' '.join(args)}: no default metrics port"
            default = settings[named.group(1).lower()].default
            assert isinstance(default, int)
            return default
    assert args == ("api",), f"optibid {' '.join(args)} has no --metrics-port"
    default = settings["api_port"].default
    assert isinstance(default, int)
    return default


def test_prometheus_config_is_valid() -> None:
    result = subprocess.run(
        [promtool(), "check", "config", str(PROMETHEUS_CONFIG)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr
    assert prometheus_config()["rule_files"] == ["rules/*.yml"]


def test_prometheus_scrapes_every_role_of_the_demo_on_its_port() -> None:
    ports = scrape_ports()
    expected = {f"optibid-{name}": default_metrics_port(args) for name, args in PROCESSES}
    expected["optibid-connectors"] = Settings.model_fields["demo_metrics_port"].default
    assert ports == expected
    assert len(set(ports.values())) == len(ports), "two jobs scrape one port"


def test_provisioning_files_name_the_dashboards_and_a_prometheus() -> None:
    folder = ROOT / "ops" / "grafana" / "provisioning"
    dashboards = yaml.safe_load((folder / "dashboards.yml").read_text(encoding="utf-8"))
    (provider,) = dashboards["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"]
    sources = yaml.safe_load((folder / "datasources.yml").read_text(encoding="utf-8"))
    assert [s["type"] for s in sources["datasources"]] == ["prometheus"]
