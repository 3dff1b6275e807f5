"""A client for a Confluent-compatible schema registry (the local stack runs Apicurio's)."""

from __future__ import annotations

import contextlib
import json
import time
from typing import Any, Literal

import httpx

from schemas.errors import IncompatibleSchemaError, RegistryUnavailableError, SchemaNotFoundError

Compatibility = Literal["BACKWARD", "BACKWARD_TRANSITIVE", "FORWARD", "FULL", "NONE"]
_CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
CONFIG_ATTEMPTS = 10


class RegistryClient:
    """Registers and fetches Avro schemas over the Confluent REST API.

    `base_url` is the API root (for Apicurio 3: `http://host:port/apis/ccompat/v7`).
    """

    def __init__(self, base_url: str, timeout_s: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=timeout_s,
            headers={"Content-Type": _CONTENT_TYPE, "Accept": _CONTENT_TYPE},
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        try:
            response = self._http.request(method, path, json=body)
        except httpx.HTTPError as exc:
            raise RegistryUnavailableError(
                f"schema registry at {self.base_url} unreachable ({type(exc).__name__}: {exc});"
                " is the stack up? try `optibid stack status`"
            ) from exc
        if response.status_code >= 500:
            raise RegistryUnavailableError(
                f"schema registry at {self.base_url} answered {response.status_code} to"
                f" {method} {path}: {response.text[:300]}"
            )
        return response

    def register(self, subject: str, schema: str) -> int:
        """Register `schema` under `subject` (a no-op returning the same id when already there)."""
        response = self._call(
            "POST", f"/subjects/{subject}/versions", {"schema": schema, "schemaType": "AVRO"}
        )
        if response.status_code == 409:
            raise IncompatibleSchemaError(
                f"registry rejected the schema for subject {subject!r}: {response.text[:500]}"
            )
        if response.status_code == 422:
            raise IncompatibleSchemaError(
                f"registry found the schema for subject {subject!r} invalid: {response.text[:500]}"
            )
        response.raise_for_status()
        return int(response.json()["id"])

    def schema_by_id(self, schema_id: int) -> str:
        response = self._call("GET", f"/schemas/ids/{schema_id}")
        if response.status_code == 404:
            raise SchemaNotFoundError(f"registry {self.base_url} has no schema with id {schema_id}")
        response.raise_for_status()
        return str(response.json()["schema"])

    def latest_version(self, subject: str) -> tuple[int, int, str]:
        """(schema id, version, schema text) of the subject's latest version."""
        response = self._call("GET", f"/subjects/{subject}/versions/latest")
        if response.status_code == 404:
            raise SchemaNotFoundError(f"registry {self.base_url} has no subject {subject!r}")
        response.raise_for_status()
        body = response.json()
        return int(body["id"]), int(body["version"]), str(body["schema"])

    def subjects(self) -> list[str]:
        response = self._call("GET", "/subjects")
        response.raise_for_status()
        return [str(s) for s in response.json()]

    def set_compatibility(self, subject: str, level: Compatibility) -> None:
        """Set the subject's rule. Processes starting together set the same rules at once, and
        the registry answers one of two concurrent writes with 409: that one reads the rule
        back and tries again until it holds."""
        for attempt in range(CONFIG_ATTEMPTS):
            response = self._call("PUT", f"/config/{subject}", {"compatibility": level})
            if response.status_code != 409:
                response.raise_for_status()
                return
            time.sleep(0.05 * (attempt + 1))
            with contextlib.suppress(httpx.HTTPStatusError):
                if self.compatibility(subject) == level:
                    return
        response.raise_for_status()

    def compatibility(self, subject: str) -> str:
        response = self._call("GET", f"/config/{subject}")
        response.raise_for_status()
        body = response.json()
        return str(body.get("compatibilityLevel") or body.get("compatibility"))

    def is_compatible(self, subject: str, schema: str) -> bool:
        """Whether `schema` could be registered next under `subject`'s compatibility rule."""
        response = self._call(
            "POST",
            f"/compatibility/subjects/{subject}/versions/latest",
            {"schema": schema, "schemaType": "AVRO"},
        )
        if response.status_code == 404:
            return True  # no version yet: anything is compatible with nothing
        if response.status_code in (409, 422):
            return False
        response.raise_for_status()
        body = response.json()
        return bool(body.get("is_compatible", body.get("isCompatible")))

    def delete_subject(self, subject: str) -> None:
        for permanent in ("false", "true"):
            response = self._call("DELETE", f"/subjects/{subject}?permanent={permanent}")
            if response.status_code not in (200, 404):
                response.raise_for_status()


def canonical(schema_text: str) -> str:
    """Stable JSON form of a schema, for comparing what the registry returns with a file."""
    return json.dumps(json.loads(schema_text), sort_keys=True, separators=(",", ":"))
