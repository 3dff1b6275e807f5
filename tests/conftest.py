"""Shared fixtures. Integration fixtures live in tests/integration/conftest.py."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parent.parent.parent / "shared"
ISO_FIXTURES = SHARED / "fixtures" / "iso"


@pytest.fixture(scope="session")
def iso_fixtures() -> Path:
    """The recorded ISO responses beside the project; tests using them skip, saying why, without."""
    if not ISO_FIXTURES.is_dir():
        pytest.skip(f"recorded ISO payloads not found at {ISO_FIXTURES} (../shared is absent)")
    return ISO_FIXTURES
