"""The assembled app without a stack: its OpenAPI document, problem answers for bad parameters
and for dependencies that are down, and latest values from a stand-in Redis, through the hot
path and through FastAPI alike."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import psycopg
import pytest
from fastapi import FastAPI

from api.app import create_app, serve
from api.deps import postgres, redis_client
from api.identity import AuthSettings
from api.models.latest import KpiLatestList, LmpLatestList
from api.models.meta import Readiness
from api.problems import PROBLEM
from api.rows import ENVELOPE_COLUMNS
from identity.tokens import KeyRing, issue_access_token
from projections.redis_sink import values_key
from projections.tables import KPIS, LMP

SCHEMA = "demo"
COMPONENTS = "#/components/schemas/"
# a fixed key ring: tokens verify without PostgreSQL; one without a session (`sid`) is taken
# at its claims, so these tests need no identity read model
AUTH = AuthSettings(ring=KeyRing.generate(), service_tokens=True)
assert AUTH.ring is not None
VIEWER = "viewer"  # stands for a viewer's token, made when the request is sent


def viewer_token() -> str:
    """Made at each request: a token made when the tests are collected may have expired by
    the time a long run reaches them."""
    assert AUTH.ring is not None
    return issue_access_token(
        AUTH.ring, issuer=AUTH.issuer, audience=AUTH.audience, subject="usr_test",
        org="org_test", roles=["viewer"], scope="read",
    )  # fmt: skip


@pytest.fixture
def app() -> FastAPI:
    # never started (no lifespan): the pool is closed and nothing listens on port 1, so every
    # dependency is down until a test stands one in
    return create_app(
        "postgresql://optibid@127.0.0.1:1/optibid", "redis://127.0.0.1:1/0", SCHEMA,
        auth_settings=AUTH, rate_limits=False,
    )  # fmt: skip


def get(asgi: Any, path: str, token: str | None = VIEWER) -> httpx.Response:
    if token == VIEWER:
        token = viewer_token()
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=asgi)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            return await client.get(path, headers=headers)

    return asyncio.run(call())


def lmp_value(location_id: str, price: float, name: str | None) -> dict[str, Any]:
    """A latest LMP as the projector writes it to Redis: every column, times with an offset."""
    return {
        "iso": "PJM",
        "market": "RT_5MIN",
        "location_id": location_id,
        "interval_start_utc": "2025-05-01T04:00:00+00:00",
        "interval_minutes": 5,
        "location_name": name,
        "location_type": "NODE",
        "lmp_usd_per_mwh": price,
        "energy_usd_per_mwh": None,
        "congestion_usd_per_mwh": None,
        "loss_usd_per_mwh": None,
        "revision": 2,
        "supersedes_revision": 1,
        "run_id": "run-1",
        "source_dataset": "lmp_rt_5min",
        "event_id": f"event-{location_id}",
        "occurred_at_utc": "2025-05-01T04:05:00+00:00",
        "recorded_at_utc": "2025-05-01T04:06:00+00:00",
        "source": "connector.pjm",
    }


def kpi_value(kpi: str, value: float | None) -> dict[str, Any]:
    return {
        "iso": "PJM",
        "market": "RT_5MIN",
        "location_id": "51288",
        "kpi": kpi,
        "window_kind": "HOUR",
        "window_start_utc": "2025-05-01T04:00:00+00:00",
        "window_end_utc": "2025-05-01T05:00:00+00:00",
        "value": value,
        "unit": "USD/MWh",
        "intervals_received": 12,
        "intervals_expected": 12,
        "revision": 1,
        "event_id": f"event-{kpi}",
        "occurred_at_utc": "2025-05-01T05:00:00+00:00",
        "recorded_at_utc": "2025-05-01T05:01:00+00:00",
        "source": "kpi-worker",
    }


PRICES = {
    "PJM|RT_5MIN|51288": lmp_value("51288", 31.42, "WESTERN HUB"),
    "PJM|RT_5MIN|51003": lmp_value("51003", -2.5, None),  # negative price, a node with no name
    "PJM|DA_HOURLY|51288": {**lmp_value("51288", 30.0, "WESTERN HUB"), "market": "DA_HOURLY"},
}
KPIS_51288 = {
    "twap_lmp_usd_per_mwh|HOUR": kpi_value("twap_lmp_usd_per_mwh", 31.0),
    "max_lmp_usd_per_mwh|HOUR": kpi_value("max_lmp_usd_per_mwh", None),  # a window without input
}


class StubRedis:
    """Hashes of JSON values under the schema's keys, answered as redis-py does (bytes)."""

    def __init__(self, hashes: dict[str, dict[str, dict[str, Any]]]) -> None:
        self.hashes = {
            values_key(SCHEMA, name): {
                k.encode(): json.dumps(v).encode() for k, v in fields.items()
            }
            for name, fields in hashes.items()
        }

    def hgetall(self, key: str) -> dict[bytes, bytes]:
        return dict(self.hashes.get(key, {}))

    def hget(self, key: str, field: str) -> bytes | None:
        return self.hashes.get(key, {}).get(field.encode())


class AsyncStubRedis:
    def __init__(self, stub: StubRedis) -> None:
        self.stub = stub

    async def hgetall(self, key: str) -> dict[bytes, bytes]:
        return self.stub.hgetall(key)

    async def hget(self, key: str, field: str) -> bytes | None:
        return self.stub.hget(key, field)

    async def execute(self, *commands: tuple[str, ...]) -> list[Any]:
        """As api.resp.RespClient answers: HGETALL flat, HGET a value or None."""
        replies: list[Any] = []
        for name, *args in commands:
            if name == "HGETALL":
                replies.append([x for kv in self.stub.hgetall(args[0]).items() for x in kv])
            else:
                replies.append(self.stub.hget(args[0], args[1]))
        return replies


class UnmigratedPool:
    """A pool of a database whose schema lacks the read-model tables."""

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        raise psycopg.errors.UndefinedTable(f'relation "{SCHEMA}.gaps" does not exist')
        yield  # a generator, as a pool's connection() is


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from refs(item)


def test_every_operation_documents_its_answer_and_its_problems(app: FastAPI) -> None:
    document = app.openapi()
    schemas = document["components"]["schemas"]
    problem = {PROBLEM: {"schema": {"$ref": f"{COMPONENTS}Problem"}}}
    public = {
        "/v1/auth/login", "/v1/auth/refresh", "/v1/invitations/{invitation_id}/register",
        "/v1/auth/sso/discover", "/v1/auth/sso/{connection_id}/start",
        "/v1/auth/sso/oidc/callback", "/v1/auth/sso/saml/acs",
        "/v1/auth/sso/{connection_id}/saml/metadata", "/v1/auth/sso/exchange",
    }  # fmt: skip
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            success = next(code for code in responses if code[0] in "23")
            ok = responses[success].get("content", {})
            if path == "/v1/live":
                data = ok["text/event-stream"]["itemSchema"]["properties"]["data"]
                assert data["contentSchema"]["oneOf"] == [
                    {"$ref": f"{COMPONENTS}LmpUpdate"},
                    {"$ref": f"{COMPONENTS}KpiUpdate"},
                ]
            elif success not in ("204", "303") and "application/json" in ok:
                ref = ok["application/json"]["schema"]["$ref"]
                shape = schemas[ref.removeprefix(COMPONENTS)]
                if set(operation["tags"]) & {"latest", "history", "catalog", "quality"}:
                    assert shape["required"] == ["data", "next_cursor"], path
            where = f"{method} {path}"
            assert responses["422"]["content"] == problem, where
            assert responses["500"]["content"] == problem, where
            if path.startswith("/v1/") and path not in public:
                assert responses["401"]["content"] == problem, where
                assert responses["403"]["content"] == problem, where
            if "503" in responses and path != "/ready":
                assert responses["503"]["content"] == problem, where
                assert "Retry-After" in responses["503"]["headers"], where
    assert set(refs(document)) <= {f"{COMPONENTS}{name}" for name in schemas}
    assert "HTTPValidationError" not in schemas  # FastAPI's 422 shape is not what is sent


@pytest.mark.parametrize(
    ("path", "param"),
    [
        ("/v1/quality/gaps?status=lost", "status"),
        ("/v1/lmp?start=2025-05-02&end=2025-05-01", "end"),
        ("/v1/lmp?start=2025-05-01&end=2025-05-02&limit=many", "limit"),  # FastAPI's own check
        ("/v1/kpis?start=2025-05-01&end=2025-05-02&window_kind=WEEK", "window_kind"),
        ("/v1/lmp/latest?iso=NYISO", "iso"),
        ("/v1/lmp/latest?bid=1", "bid"),  # the hot path takes no other parameter
        ("/v1/catalog/locations?location_type=HUB%00", "location_type"),  # refused before routing
    ],
)
def test_a_bad_parameter_is_a_422_naming_it_even_while_dependencies_are_down(
    app: FastAPI, path: str, param: str
) -> None:
    answer = get(serve(app), path)
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == PROBLEM
    problem = answer.json()
    assert problem["invalid_params"] == [{"name": param, "reason": problem["detail"]}]


@pytest.mark.parametrize(
    ("path", "title"),
    [
        ("/v1/catalog/datasets", "PostgreSQL unavailable"),
        ("/v1/quality/gaps?status=open", "PostgreSQL unavailable"),
        ("/v1/lmp?start=2025-05-01&end=2025-05-02", "PostgreSQL unavailable"),  # streamed
        ("/v1/lmp?start=2025-05-01&end=2025-05-02&resample=1h", "PostgreSQL unavailable"),
        ("/v1/lmp/latest", "Redis unavailable"),
        ("/v1/kpis/latest", "Redis unavailable"),
    ],
)
def test_a_dependency_down_is_a_503_problem_with_retry_after(
    app: FastAPI, path: str, title: str
) -> None:
    for asgi in (serve(app), app):  # the hot path and FastAPI's handlers answer alike
        answer = get(asgi, path)
        assert answer.status_code == 503, answer.text
        assert answer.headers["content-type"] == PROBLEM
        assert answer.headers["retry-after"] == "5"
        assert answer.json()["title"] == title


def test_a_schema_without_its_tables_is_a_503_naming_it(app: FastAPI) -> None:
    app.dependency_overrides[postgres] = UnmigratedPool
    answer = get(app, "/v1/quality/gaps")
    assert (answer.status_code, answer.headers["retry-after"]) == (503, "5")
    assert answer.json()["title"] == "Read models unavailable"
    assert f"schema '{SCHEMA}'" in answer.json()["detail"]


def test_ready_names_each_dependency_that_is_down(app: FastAPI) -> None:
    answer = get(app, "/ready")
    assert answer.status_code == 503
    ready = Readiness.model_validate(answer.json())
    assert ready.status == "degraded"
    assert ready.dependencies.postgres.startswith("the history store does not answer")
    assert ready.dependencies.redis.startswith("the latest-value cache does not answer")


def test_latest_prices_answer_alike_through_the_hot_path_and_fastapi(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    stub = AsyncStubRedis(StubRedis({"lmp": PRICES}))
    monkeypatch.setattr(app.state.deps, "aredis", stub)
    monkeypatch.setattr(app.state.deps, "resp", stub)
    monkeypatch.setattr(app.state.deps.metering, "resp", stub)

    def rows(asgi: Any, query: str) -> list[dict[str, Any]]:
        answer = get(asgi, f"/v1/lmp/latest{query}")
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert LmpLatestList.model_validate(body).model_dump() == body  # no more, no less
        return [{k: v for k, v in row.items() if k != "age_seconds"} for row in body["data"]]

    for query in ("?iso=PJM&market=RT_5MIN", "?iso=pjm&market=RT_5MIN&location_id=51003", ""):
        assert rows(serve(app), query) == rows(app, query)
    latest = rows(serve(app), "?market=RT_5MIN")
    assert [r["location_id"] for r in latest] == ["51003", "51288"]  # by series
    assert latest[1]["interval_start_utc"] == "2025-05-01T04:00:00Z"
    assert latest[1] == {
        k: v for k, v in PRICES["PJM|RT_5MIN|51288"].items() if k not in ENVELOPE_COLUMNS
    } | {"interval_start_utc": "2025-05-01T04:00:00Z"}
    one = rows(serve(app), "?iso=PJM&market=RT_5MIN&location_id=51003")  # one hash field
    assert [(r["location_id"], r["location_name"]) for r in one] == [("51003", None)]


def test_latest_kpis_are_the_kpi_rows_without_their_envelope(app: FastAPI) -> None:
    stub = StubRedis({"lmp": PRICES, "PJM|RT_5MIN|51288": KPIS_51288})
    app.dependency_overrides[redis_client] = lambda: stub
    answer = get(app, "/v1/kpis/latest?location_id=51288&market=RT_5MIN")
    assert answer.status_code == 200, answer.text
    data = KpiLatestList.model_validate(answer.json()).data
    assert [(row.kpi, row.value) for row in data] == [
        ("max_lmp_usd_per_mwh", None),
        ("twap_lmp_usd_per_mwh", 31.0),
    ]
    first = answer.json()["data"][0]
    assert list(first) == [c for c in KPIS.column_names if c not in ENVELOPE_COLUMNS]
    assert first["window_start_utc"] == "2025-05-01T04:00:00+00:00"  # as the projector wrote it


def test_the_stand_in_values_have_every_column_of_their_read_model() -> None:
    assert list(lmp_value("1", 1.0, None)) == list(LMP.column_names)
    assert list(kpi_value("k", 1.0)) == list(KPIS.column_names)
