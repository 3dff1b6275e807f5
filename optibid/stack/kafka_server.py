"""Apache Kafka 4.x, one combined broker+controller KRaft node, from Maven Central jars."""

from __future__ import annotations

import base64
import secrets
import subprocess
import uuid
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from optibid.stack import maven
from optibid.stack.errors import StackError

POM = maven.OPS_DIR / "kafka" / "pom.xml"
LOG4J2 = maven.OPS_DIR / "kafka" / "log4j2.properties"
READY_TOPIC = "__optibid_ready"
SASL_USER = "optibid"
# librdkafka logs every refused connection while the broker boots; the probe reports failure itself
QUIET = {"log_level": 2}


class KafkaServer(maven.JavaServer):
    name = "kafka"
    port_field = "kafka_port"
    extra_port_fields = ("kafka_controller_port", "kafka_sasl_port")

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def sasl_credentials(self) -> tuple[str, str]:
        """(user, password) of the SASL listener: made once per stack, kept in its folder."""
        path = self.dir / "sasl-password"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(24))
            path.chmod(0o600)
        return SASL_USER, path.read_text().strip()

    def _properties(self) -> str:
        s = self.settings
        user, password = self.sasl_credentials()
        # the SASL listener (PLAIN, loopback) is for the clients' security path and its tests;
        # the plaintext one for everything else
        jaas = (
            "org.apache.kafka.common.security.plain.PlainLoginModule required"
            f' username="{user}" password="{password}" user_{user}="{password}";'
        )
        listeners = (
            f"PLAINTEXT://{s.host}:{s.kafka_port},CONTROLLER://{s.host}:{s.kafka_controller_port},"
            f"SASL_PLAINTEXT://{s.host}:{s.kafka_sasl_port}"
        )
        return "\n".join(
            [
                "process.roles=broker,controller",
                "node.id=1",
                f"controller.quorum.bootstrap.servers={s.host}:{s.kafka_controller_port}",
                f"listeners={listeners}",
                f"advertised.listeners=PLAINTEXT://{s.host}:{s.kafka_port},"
                f"SASL_PLAINTEXT://{s.host}:{s.kafka_sasl_port}",
                "controller.listener.names=CONTROLLER",
                "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,"
                "SASL_PLAINTEXT:SASL_PLAINTEXT",
                "inter.broker.listener.name=PLAINTEXT",
                "sasl.enabled.mechanisms=PLAIN",
                f"listener.name.sasl_plaintext.plain.sasl.jaas.config={jaas}",
                f"log.dirs={self.dir / 'data'}",
                # one node: internal topics must not ask for more replicas than exist,
                # or transactions and consumer offsets never become available
                "offsets.topic.replication.factor=1",
                "offsets.topic.num.partitions=10",
                "transaction.state.log.replication.factor=1",
                "transaction.state.log.min.isr=1",
                "transaction.state.log.num.partitions=10",
                "share.coordinator.state.topic.replication.factor=1",
                "share.coordinator.state.topic.min.isr=1",
                "num.partitions=1",
                "default.replication.factor=1",
                "min.insync.replicas=1",
                "group.initial.rebalance.delay.ms=0",
                # topics are a contract: they are created from the catalog, never by accident
                "auto.create.topics.enable=false",
                "log.cleaner.enable=true",
                "",
            ]
        )

    def prepare(self) -> None:
        self.classpath = maven.resolve_classpath(POM, self.settings.state_dir / "cache")
        config = self.dir / "server.properties"
        config.write_text(self._properties())
        if (self.dir / "data" / "meta.properties").exists():
            return
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        result = subprocess.run(
            [
                self.java,
                "-Xmx256m",
                "-cp",
                self.classpath,
                f"-Dlog4j2.configurationFile={LOG4J2}",
                "kafka.tools.StorageTool",
                "format",
                # one word: an id may begin with "-", which the tool would take for an option
                f"--cluster-id={cluster_id}",
                "-c",
                str(config),
                "--standalone",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise StackError(
                "formatting Kafka's log directory failed: "
                + (result.stdout + result.stderr)[-800:],
                f"remove {self.dir / 'data'} and retry `optibid stack up`",
            )

    def argv(self) -> list[str]:
        heap = f"{self.settings.kafka_heap_mb}m"
        return [
            self.java,
            f"-Xms{heap}", f"-Xmx{heap}",
            "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={LOG4J2}",
            f"-Dkafka.logs.dir={self.dir / 'logs'}",
            "-cp", self.classpath,
            "kafka.Kafka", str(self.dir / "server.properties"),
        ]  # fmt: skip

    def ready(self) -> bool:
        """A produce/consume round trip through the broker."""
        admin = AdminClient(
            {"bootstrap.servers": self.bootstrap, "socket.timeout.ms": 3000, **QUIET}
        )
        metadata = admin.list_topics(timeout=3)
        if READY_TOPIC not in metadata.topics:
            futures = admin.create_topics([NewTopic(READY_TOPIC, 1, 1)], operation_timeout=5)
            for future in futures.values():
                try:
                    future.result(timeout=10)
                except KafkaException as exc:
                    if "TOPIC_ALREADY_EXISTS" not in str(exc):
                        raise
        token = uuid.uuid4().bytes
        delivered: list[int] = []
        producer = Producer(
            {"bootstrap.servers": self.bootstrap, "enable.idempotence": True, **QUIET}
        )

        def on_delivery(err: Any, msg: Any) -> None:
            if err is None:
                delivered.append(msg.offset())

        producer.produce(READY_TOPIC, token, on_delivery=on_delivery)
        producer.flush(10)
        if not delivered:
            return False
        consumer = Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                "group.id": "optibid-ready",
                **QUIET,
                "enable.auto.commit": False,
            }
        )
        try:
            consumer.assign([TopicPartition(READY_TOPIC, 0, delivered[0])])
            msg = consumer.poll(10)
            return msg is not None and msg.error() is None and msg.value() == token
        finally:
            consumer.close()

    def details(self) -> dict[str, Any]:
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        metadata = admin.list_topics(timeout=5)
        return {
            "version": _version_of(self.settings.state_dir / "cache"),
            "topics": len([t for t in metadata.topics if not t.startswith("__")]),
        }


def _version_of(cache_dir: Path) -> str | None:
    for classpath in cache_dir.glob("kafka-*.classpath"):
        for jar in classpath.read_text().split(":"):
            name = Path(jar).name
            if name.startswith("kafka_2.13-"):
                return name.removeprefix("kafka_2.13-").removesuffix(".jar")
    return None
