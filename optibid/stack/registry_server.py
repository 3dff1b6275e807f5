"""Apicurio Registry 3.0 (the newest 3.x that runs on Java 17) with the Confluent-compatible API.

It stores schemas in PostgreSQL.

Its default in-memory store would forget schema ids on restart and orphan every record
already on the topics, so the stack points it at its own database in the stack's PostgreSQL.
"""

from __future__ import annotations

from typing import Any

import httpx

from optibid.stack import maven
from optibid.stack.postgres_server import REGISTRY_DATABASE

POM = maven.OPS_DIR / "registry" / "pom.xml"
RUN_JAR = "apicurio-registry-app-3.0.9-runner.jar"
ARCHIVE = "apicurio-registry-all.tar.gz"


class RegistryServer(maven.JavaServer):
    name = "registry"
    port_field = "registry_port"

    @property
    def api(self) -> str:
        return f"http://{self.host}:{self.port}/apis/ccompat/v7"

    def prepare(self) -> None:
        self.app_dir = maven.fetch_distribution(
            POM, self.settings.state_dir / "cache", ARCHIVE, RUN_JAR
        )

    def argv(self) -> list[str]:
        s = self.settings
        heap = f"{s.registry_heap_mb}m"
        jdbc = f"jdbc:postgresql://{s.host}:{s.postgres_port}/{REGISTRY_DATABASE}"
        return [
            self.java,
            f"-Xms{heap}", f"-Xmx{heap}", "-XX:+UseSerialGC", "-Djava.awt.headless=true",
            f"-Dquarkus.http.host={s.host}",
            f"-Dquarkus.http.port={s.registry_port}",
            "-Dapicurio.storage.kind=sql",
            "-Dapicurio.storage.sql.kind=postgresql",
            f"-Dapicurio.datasource.url={jdbc}",
            f"-Dapicurio.datasource.username={s.postgres_user}",
            "-Dapicurio.datasource.password=trust-auth-on-loopback",
            "-Dapicurio.datasource.jdbc.initial-size=2",
            "-Dapicurio.datasource.jdbc.min-size=2",
            "-Dapicurio.datasource.jdbc.max-size=10",
            "-jar", str(self.app_dir / RUN_JAR),
        ]  # fmt: skip

    def ready(self) -> bool:
        response = httpx.get(f"{self.api}/subjects", timeout=3)
        return response.status_code == 200 and isinstance(response.json(), list)

    def details(self) -> dict[str, Any]:
        subjects = httpx.get(f"{self.api}/subjects", timeout=3).json()
        return {
            "api": self.api,
            "storage": f"postgresql/{REGISTRY_DATABASE}",
            "subjects": len(subjects),
        }
