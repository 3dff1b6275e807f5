"""The access tokens' signing keys in PostgreSQL and their JWKS on the API: a rotation keeps the
previous key published, a token verifies with the published key of its kid, and rotations are
kept bounded."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import jwt
import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from identity import signing
from identity.tokens import issue_access_token, verify_access_token
from optibid.settings import Settings
from projections.migrate import drop_schema
from tests.integration.streams_util import PROJECT


@pytest.fixture
def keys_schema(stack_settings: Settings, test_id: str) -> Iterator[str]:
    yield f"{test_id}_keys"
    drop_schema(stack_settings.postgres_dsn, f"{test_id}_keys")


def test_rotations_keep_the_previous_keys_the_ring_retains(
    stack_settings: Settings, keys_schema: str
) -> None:
    with psycopg.connect(stack_settings.postgres_dsn, autocommit=True) as conn:
        assert signing.load(conn, keys_schema) is None
        kids = [signing.rotate(conn, schema=keys_schema).current.kid for _ in range(4)]
        ring = signing.load(conn, keys_schema)
    assert ring is not None
    assert len(set(kids)) == 4
    assert list(ring.kids) == [kids[3], kids[2], kids[1]]  # the current and two before it


def test_the_api_publishes_the_keys_and_a_token_verifies_with_them(
    stack_settings: Settings, db_schema: str
) -> None:
    rotated = subprocess.run(
        [sys.executable, "-m", "optibid", "admin", "rotate-signing-key"],
        cwd=PROJECT, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    kid = json.loads(rotated.stdout.strip().splitlines()[-1])["current_kid"]
    with psycopg.connect(stack_settings.postgres_dsn) as conn:
        ring = signing.load(conn)
    assert ring is not None
    token = issue_access_token(
        ring, issuer="optibid", audience="optibid-api", subject="usr_1", org="org_1",
        roles=["analyst"], scope="read",
    )  # fmt: skip
    app = create_app(stack_settings.postgres_dsn, stack_settings.redis_dsn, db_schema)
    with TestClient(app) as client:
        answer = client.get("/.well-known/jwks.json")
    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "public, max-age=300"
    published = {key["kid"]: key for key in answer.json()["keys"]}
    assert kid in published
    assert all("d" not in key for key in published.values())  # no private part
    header = jwt.get_unverified_header(token)
    public = jwt.algorithms.ECAlgorithm.from_jwk(json.dumps(published[header["kid"]]))
    claims = jwt.decode(token, public, algorithms=["ES256"], audience="optibid-api")  # type: ignore[arg-type]
    assert claims["sub"] == "usr_1"
    assert verify_access_token(token, ring, issuer="optibid", audience="optibid-api").org == "org_1"
