"""The OpenAPI document: what FastAPI derives from the routes, plus the shapes it cannot derive
from them (problem details, the live stream's event data), which routes refer to by name in
their `responses`."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from api.models.live import LIVE_MODELS, KpiUpdate, LmpUpdate
from api.problems import PROBLEM, RETRY_AFTER_S, Problem

COMPONENTS = "#/components/schemas/"
EXTRA_MODELS: tuple[type[BaseModel], ...] = (Problem, *LIVE_MODELS)

PROBLEM_DESCRIPTIONS = {
    400: "The request cannot be served as sent.",
    401: "No principal: credentials missing, malformed, expired or revoked. Send an access "
    "token (`Authorization: Bearer`) or an API key (`Authorization: Bearer` or `X-API-Key`).",
    403: "The principal's role or key scope does not allow this; `code` says which.",
    404: "No such resource in the principal's organisation.",
    409: "The change conflicts with the current state (exists already, the last owner, "
    "changed meanwhile); `code` says which.",
    429: "Too many attempts: try again after `Retry-After` seconds.",
    422: "A parameter is invalid: `invalid_params` names it.",
    500: "The server failed.",
    503: "A dependency is down (PostgreSQL for history, catalog and quality; Redis for latest "
    "values): try again after `Retry-After` seconds.",
}


def ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"{COMPONENTS}{model.__name__}"}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses` entries of problem+json answers."""
    entries: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        entry: dict[str, Any] = {
            "description": PROBLEM_DESCRIPTIONS[status],
            "content": {PROBLEM: {"schema": ref(Problem)}},
        }
        if status == 503:
            entry["headers"] = {
                "Retry-After": {
                    "description": f"Seconds to wait before asking again ({RETRY_AFTER_S}).",
                    "schema": {"type": "integer"},
                }
            }
        entries[status] = entry
    return entries


# In the form FastAPI gives its own event streams (the OpenAPI 3.2 `itemSchema`): one item per
# event, whose `data` is JSON.
LIVE_EVENTS: dict[str, Any] = {
    "text/event-stream": {
        "itemSchema": {
            "type": "object",
            "properties": {
                "id": {
                    "type": "string",
                    "description": "`<epoch>-<sequence>`: send it back as `Last-Event-ID` to "
                    "resume after it.",
                },
                "event": {"type": "string", "enum": ["lmp", "kpi"]},
                "data": {
                    "type": "string",
                    "contentMediaType": "application/json",
                    "contentSchema": {"oneOf": [ref(LmpUpdate), ref(KpiUpdate)]},
                },
                "retry": {"type": "integer", "minimum": 0},
            },
        }
    }
}


class DocumentedApi(FastAPI):
    """FastAPI with the extra shapes in its document's components."""

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is not None:
            return self.openapi_schema
        document = super().openapi()
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        _, extra = models_json_schema(
            [(model, "serialization") for model in EXTRA_MODELS],
            ref_template=COMPONENTS + "{model}",
        )
        for name, schema in extra.get("$defs", {}).items():
            if schemas.setdefault(name, schema) != schema:
                raise RuntimeError(f"two different schemas are named {name}")
        return document
