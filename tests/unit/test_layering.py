"""Who may import whom (ARCHITECTURE.md): roles meet only on topics."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OURS = ("schemas", "connectors", "streams", "projections", "api", "optibid")
FORBIDDEN = {
    "schemas": {"connectors", "streams", "projections", "api", "optibid"},
    "connectors": {"streams", "projections", "api", "optibid"},
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
