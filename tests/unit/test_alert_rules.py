"""The Prometheus rules (ops/prometheus) stay valid and true to the code: promtool checks them and
runs their unit tests; every metric, label and recorded series they name exists; every alert
has a severity, a summary, a description and a runbook section, and is tested firing and not."""

from __future__ import annotations

import ast
import functools
import re
import shutil
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from connectors.live import CADENCE

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "ops" / "prometheus"
RULE_FILES = sorted((PROMETHEUS / "rules").glob("*.yml"))
TEST_FILES = sorted((PROMETHEUS / "tests").glob("*.yml"))
RUNBOOK = PROMETHEUS / "RUNBOOK.md"
RUNBOOK_PATH = "ops/prometheus/RUNBOOK.md"
PACKAGES = (
    "schemas",
    "connectors",
    "streams",
    "projections",
    "api",
    "optibid",
    "identity",
    "billing",
)
KINDS = ("Counter", "Gauge", "Histogram", "Summary")
SEVERITIES = {"page", "ticket"}
SUFFIXES = ("_total", "_bucket", "_sum", "_count")
# labels the scrape adds (instance, job) and the bucket bound of a histogram series (le)
SCRAPE_LABELS = {"instance", "job", "le"}

METRIC = re.compile(r"(?<![\w:])optibid_[a-z0-9_]+(?![\w:(])")
SELECTOR = re.compile(r"(?<![\w:])(optibid_[a-z0-9_]+)\{([^}]*)\}")
MATCHER = re.compile(r"(\w+)\s*(?:=~|!~|!=|=)")
RECORDED = re.compile(r"(?<![\w:])[a-z_][a-z0-9_]*:[a-z0-9_:]+")
GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail(
            "promtool is not on PATH: run `sh ops/setup.sh test` (it installs Debian's "
            "`prometheus` package, which ships promtool), then run this test again"
        )
    return path


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return data


def rules() -> Iterator[dict[str, Any]]:
    for path in RULE_FILES:
        for group in load(path)["groups"]:
            yield from group["rules"]


def alerts() -> list[dict[str, Any]]:
    return [rule for rule in rules() if "alert" in rule]


def recordings() -> list[dict[str, Any]]:
    return [rule for rule in rules() if "record" in rule]


@functools.cache
def code_metrics() -> dict[str, tuple[str, set[str]]]:
    """Every metric the Python sources define: its name as given, its kind and label names
    (prometheus_client's Counter, Gauge, Histogram and Summary, under whatever local name they
    are imported)."""
    found: dict[str, tuple[str, set[str]]] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            local = {
                alias.asname or alias.name: alias.name
                for node in ast.walk(tree)
                if isinstance(node, ast.ImportFrom) and node.module == "prometheus_client"
                for alias in node.names
                if alias.name in KINDS
            }
            for node in ast.walk(tree):
                if not isinstance(node, ast.Call) or not node.args:
                    continue
                func, first = node.func, node.args[0]
                if not isinstance(func, ast.Name) or func.id not in local:
                    continue
                if not isinstance(first, ast.Constant):
                    continue
                labels = node.args[2] if len(node.args) > 2 else None
                for keyword in node.keywords:
                    if keyword.arg == "labelnames":
                        labels = keyword.value
                names = (
                    {str(e.value) for e in labels.elts if isinstance(e, ast.Constant)}
                    if isinstance(labels, ast.List | ast.Tuple)
                    else set()
                )
                found[str(first.value)] = (local[func.id], names)
    return found


def exposed(metrics: dict[str, tuple[str, set[str]]]) -> dict[str, set[str]]:
    """The series names a scrape shows for each metric, with their label names."""
    series: dict[str, set[str]] = {}
    for name, (kind, labels) in metrics.items():
        base = name.removesuffix("_total") if kind == "Counter" else name
        if kind == "Counter":
            series[f"{base}_total"] = labels
        elif kind == "Gauge":
            series[base] = labels
        else:
            series[f"{base}_bucket"] = labels | {"le"}
            series[f"{base}_sum"] = labels
            series[f"{base}_count"] = labels
            if kind == "Summary":
                series[base] = labels | {"quantile"}
    return series


def strip_suffix(name: str) -> str:
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            return name.removesuffix(suffix)
    return name


def anchor(heading: str) -> str:
    """The anchor a Markdown heading gets (lower case, punctuation out, spaces to hyphens)."""
    slug = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return slug.replace(" ", "-")


def runbook_anchors() -> set[str]:
    text = RUNBOOK.read_text(encoding="utf-8")
    return {anchor(m.group(1)) for m in re.finditer(r"^#{1,6} (.+)$", text, re.MULTILINE)}


def unit_tests() -> Iterator[dict[str, Any]]:
    for path in TEST_FILES:
        yield from load(path)["tests"]


# --- promtool ---------------------------------------------------------------------------------


def test_files_are_there() -> None:
    assert RULE_FILES, "no rule files under ops/prometheus/rules"
    assert TEST_FILES, "no promtool unit tests under ops/prometheus/tests"
    assert RUNBOOK.is_file()


def test_promtool_checks_the_rules() -> None:
    result = subprocess.run(
        [promtool(), "check", "rules", *map(str, RULE_FILES)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_pass() -> None:
    result = subprocess.run(
        [promtool(), "test", "rules", *map(str, TEST_FILES)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "FAILED" not in result.stdout + result.stderr


# --- true to the code -------------------------------------------------------------------------


def test_every_metric_in_the_rules_is_defined_in_the_code() -> None:
    defined = {strip_suffix(name) for name in code_metrics()}
    used = {m for rule in rules() for m in METRIC.findall(rule["expr"])}
    assert used, "no optibid_ metric found in the rules' expressions"
    unknown = sorted(name for name in used if strip_suffix(name) not in defined)
    assert not unknown, f"metrics the code does not define: {unknown}"


def test_every_metric_is_named_as_a_scrape_shows_it() -> None:
    series = exposed(code_metrics())
    used = {m for rule in rules() for m in METRIC.findall(rule["expr"])}
    wrong = sorted(name for name in used if name not in series)
    assert not wrong, f"not a scraped series (a counter's _total, a histogram's _bucket?): {wrong}"


def test_label_matchers_name_labels_of_their_metric() -> None:
    series = exposed(code_metrics())
    for rule in rules():
        for name, matchers in SELECTOR.findall(rule["expr"]):
            labels = set(MATCHER.findall(matchers))
            allowed = series.get(name, set()) | SCRAPE_LABELS
            assert labels <= allowed, f"{name}: no label {sorted(labels - allowed)} in the code"


def test_grouping_labels_exist() -> None:
    known = {label for _, labels in code_metrics().values() for label in labels}
    known |= SCRAPE_LABELS
    known |= {label for rule in recordings() for label in rule.get("labels", {})}
    for rule in rules():
        for clause in GROUPING.findall(rule["expr"]):
            labels = {label.strip() for label in clause.split(",") if label.strip()}
            assert labels <= known, f"{rule.get('alert') or rule['record']}: {labels - known}"


def test_every_recorded_series_used_is_recorded() -> None:
    recorded = {rule["record"] for rule in recordings()}
    for rule in rules():
        used = set(RECORDED.findall(rule["expr"]))
        assert used <= recorded, f"{rule.get('alert') or rule['record']}: {used - recorded}"


def test_dataset_cadences_are_the_live_connectors() -> None:
    cadences: dict[str, timedelta] = {}
    for rule in recordings():
        if rule["record"] == "optibid:dataset_cadence_seconds":
            seconds = re.fullmatch(r"vector\((\d+)\)", rule["expr"])
            assert seconds is not None, rule["expr"]
            cadences[rule["labels"]["dataset"]] = timedelta(seconds=int(seconds.group(1)))
    assert cadences == {dataset.value: every for dataset, (every, _) in CADENCE.items()}


# --- alerts: labels, annotations, runbook, tests ----------------------------------------------


def test_every_alert_has_severity_annotations_and_a_runbook_section() -> None:
    anchors = runbook_anchors()
    names = [rule["alert"] for rule in alerts()]
    assert len(names) == len(set(names)), "an alert name is used twice"
    for rule in alerts():
        name = rule["alert"]
        assert rule.get("labels", {}).get("severity") in SEVERITIES, name
        annotations = rule.get("annotations", {})
        for key in ("summary", "description", "runbook"):
            assert str(annotations.get(key, "")).strip(), f"{name}: no {key}"
        path, _, section = annotations["runbook"].partition("#")
        assert path == RUNBOOK_PATH, f"{name}: runbook {annotations['runbook']}"
        assert section in anchors, f"{name}: RUNBOOK.md has no section #{section}"


def test_every_runbook_alert_section_is_an_alert() -> None:
    text = RUNBOOK.read_text(encoding="utf-8")
    sections = set(re.findall(r"^## (\S+)$", text, re.MULTILINE))
    assert sections == {rule["alert"] for rule in alerts()}


def test_every_alert_is_tested_firing_and_not_firing() -> None:
    fires: set[str] = set()
    quiet: set[str] = set()
    for test in unit_tests():
        for case in test.get("alert_rule_test", []):
            (fires if case.get("exp_alerts") else quiet).add(case["alertname"])
    names = {rule["alert"] for rule in alerts()}
    assert names <= fires, f"never tested firing: {sorted(names - fires)}"
    assert names <= quiet, f"never tested not firing: {sorted(names - quiet)}"


def test_every_recording_rule_is_queried_by_a_test() -> None:
    queried = " ".join(
        case["expr"] for test in unit_tests() for case in test.get("promql_expr_test", [])
    )
    recorded = {rule["record"] for rule in recordings()}
    untested = sorted(name for name in recorded if name not in set(RECORDED.findall(queried)))
    assert not untested, f"recording rules no promql_expr_test queries: {untested}"
