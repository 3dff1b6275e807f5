"""Who may import whom (ARCHITECTURE.md): roles meet only on topics."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OURS = ("schemas", "connectors", "streams", "projections", "api", "optibid", "identity", "billing")
FORBIDDEN = {
    "schemas": {"connectors", "streams", "projections", "api", "optibid", "identity", "billing"},
    "connectors": {"streams", "projections", "api", "optibid", "identity", "billing"},
    # identity's domain (credentials, one-time codes, sealed secrets, tokens) serves the API
    # and the command handlers alike and knows neither
    "identity": {"connectors", "streams", "projections", "api", "optibid"},
    # billing (tiers, rate limits, quotas) serves the API; it knows only the vocabulary
    "billing": {"connectors", "streams", "projections", "api", "optibid", "identity"},
    "streams": {"connectors", "projections", "api", "optibid"},
    "projections": {"connectors", "streams", "api", "optibid"},
    "api": {"connectors", "streams", "optibid"},
}


def imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names & set(OURS)


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_only_what_it_may(package: str) -> None:
    offending = {
        str(path.relative_to(ROOT)): sorted(imported_packages(path) & FORBIDDEN[package])
        for path in (ROOT / package).rglob("*.py")
    }
    assert {k: v for k, v in offending.items() if v} == {}


def test_the_streams_runtime_knows_no_worker() -> None:
    """streams/runtime/ is generic: it imports schemas/ and third-party packages, never the
    workers' own modules (which import it)."""
    offending = {}
    for path in (ROOT / "streams" / "runtime").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        modules = {
            node.module
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0
        } | {
            alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
            for alias in node.names
        }  # fmt: skip
        bad = sorted(
            m for m in modules if m.startswith("streams.") and not m.startswith("streams.runtime")
        )
        if bad:
            offending[str(path.relative_to(ROOT))] = bad
    assert offending == {}


# Where the private attributes of faust-streaming and aiokafka may be used: the streams runtime
# and its own tests (streams/runtime/internals.py names each one it relies on).
RUNTIME = ("streams/runtime/", "tests/unit/streams/runtime/")
TREES = (*OURS, "bench", "tests")
# confluent-kafka names librdkafka's local error codes with a leading underscore; they are its
# documented public API (KafkaError._PARTITION_EOF, ._ALL_BROKERS_DOWN, ...), not privates
DOCUMENTED = frozenset({"_PARTITION_EOF", "_ALL_BROKERS_DOWN", "_TIMED_OUT", "_TRANSPORT"})


def _python_files() -> list[Path]:
    return [
        path
        for tree in TREES
        for path in sorted((ROOT / tree).rglob("*.py"))
        if not str(path.relative_to(ROOT)).startswith(RUNTIME)
    ]


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _defined_privates(trees: list[ast.AST]) -> set[str]:
    """The private names this project's own code (outside the runtime) defines: functions,
    classes, module and class attributes, and attributes it assigns on its own objects."""
    names: set[str] = set()
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, (ast.Name, ast.Attribute)) and isinstance(node.ctx, ast.Store):
                names.add(node.id if isinstance(node, ast.Name) else node.attr)
            elif isinstance(node, ast.arg):
                names.add(node.arg)
    return {n for n in names if _is_private(n)} | DOCUMENTED


def test_no_private_of_another_package_is_used_outside_the_streams_runtime() -> None:
    files = _python_files()
    trees = {path: ast.parse(path.read_text(encoding="utf-8")) for path in files}
    ours = _defined_privates(list(trees.values()))
    found: list[str] = []
    for path, tree in trees.items():
        where = str(path.relative_to(ROOT))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and _is_private(node.attr):
                if node.attr not in ours:
                    found.append(f"{where}:{node.lineno} .{node.attr}")
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                if node.module.split(".")[0] in TREES:
                    continue
                found += [
                    f"{where}:{node.lineno} from {node.module} import {alias.name}"
                    for alias in node.names
                    if _is_private(alias.name)
                ]
    assert found == []
