"""The Helm chart stays true to the code: commands, settings, (ISO, dataset) pairs, ports; and,
rendered by the pinned helm (ops/tools/helm.sh), it lints, validates strictly against the
Kubernetes schemas, and keeps its hardening: Pod Security Standard "restricted", disruption
budgets, the API's autoscaler, probes, ServiceMonitors, NetworkPolicies."""

from __future__ import annotations

import copy
import functools
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import typer
import yaml

from api.routes import meta
from optibid.cli import app
from optibid.settings import Settings
from schemas.catalog import ISO_DATASETS, Dataset, Iso

CHART = Path(__file__).resolve().parents[2] / "ops" / "helm" / "optibid"
VALUES: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text())
TEMPLATES = "\n".join(p.read_text() for p in sorted((CHART / "templates").iterdir()))
VARIABLES = {f"OPTIBID_{name.upper()}" for name in Settings.model_fields}


def command_of(args: list[str]) -> tuple[list[str], Any]:
    """The command words `optibid ARGS` resolves (sub-commands followed), and the command."""
    command: Any = typer.main.get_command(app)
    words = []
    for word in args:
        group = getattr(command, "commands", None)  # a group of sub-commands
        if group is None or word not in group:
            break
        command = group[word]
        words.append(word)
    return words, command


def test_every_role_runs_a_real_command_with_its_metrics_port() -> None:
    for role, spec in VALUES["roles"].items():
        words, command = command_of(spec["args"])
        assert words == spec["args"][:1], role
        options = {o for p in command.params for o in getattr(p, "opts", [])}
        for flag in (a for a in spec["args"] if a.startswith("--")):
            assert flag in options, f"{role}: optibid {spec['args'][0]} has no {flag}"
        port = spec["args"][spec["args"].index("--metrics-port") + 1]
        assert int(port) == spec["metricsPort"], role
    for args in (["topics", "create"], ["schemas", "register"], ["db", "migrate"], ["api"]):
        assert command_of(args)[0] == args
    _, connect = command_of(["connect"])
    assert "--live" in {o for p in connect.params for o in getattr(p, "opts", [])}


def test_settings_and_environment_names_are_real_settings() -> None:
    assert set(VALUES["settings"]) <= VARIABLES
    used = set(re.findall(r"OPTIBID_[A-Z_]+", TEMPLATES)) - {"OPTIBID_"}
    assert used <= VARIABLES, used - VARIABLES


def test_connectors_name_datasets_their_iso_publishes() -> None:
    for connector in VALUES["connectors"]:
        iso, dataset = Iso(connector["iso"]), Dataset(connector["dataset"])
        assert dataset in ISO_DATASETS[iso], connector
    pairs = [(c["iso"], c["dataset"]) for c in VALUES["connectors"]]
    assert len(pairs) == len(set(pairs))  # one poller per checkpoint


# -- the chart rendered by a pinned helm, linted and validated offline ---------------------------

ROOT = CHART.parents[2]
HELM_SCRIPT = ROOT / "ops" / "tools" / "helm.sh"
# the pin and its fallback, read from the script that builds them
HELM_VERSIONS: list[str] = re.findall(
    r"^HELM(?:_FALLBACK)?_VERSION=(v[0-9.]+)$", HELM_SCRIPT.read_text(), re.MULTILINE
)
VALUES_FILES = {"default": None, "aws": "values-aws.yaml", "confluent": "values-confluent.yaml"}
KUBERNETES = "1.33.0"  # a version kubernetes-validate ships schemas for
RELEASE = "optibid"
MONITORING = "--set=serviceMonitor.enabled=true"

Doc = dict[str, Any]


def cache_home() -> Path:
    """${XDG_CACHE_HOME:-$HOME/.cache}, as ops/tools/helm.sh reads it."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")


@functools.cache
def helm_binary() -> Path:
    for version in HELM_VERSIONS:
        binary = cache_home() / "optibid" / "helm" / version / "bin" / "helm"
        if os.access(binary, os.X_OK):
            return binary
    pytest.fail(f"no helm {' or '.join(HELM_VERSIONS)} built: run `sh ops/tools/helm.sh`")


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # the pinned binary, fixed arguments
        [str(helm_binary()), *args], capture_output=True, text=True, timeout=120, check=False
    )


def values_args(name: str) -> list[str]:
    file = VALUES_FILES[name]
    return [] if file is None else ["--values", str(CHART / file)]


@functools.cache
def rendered(name: str, *extra: str) -> tuple[Doc, ...]:
    """The manifests `helm template` renders with values file NAME and EXTRA arguments."""
    done = helm(
        "template", RELEASE, str(CHART), "--namespace", "optibid", *values_args(name), *extra
    )
    assert done.returncode == 0, done.stderr
    return tuple(doc for doc in yaml.safe_load_all(done.stdout) if doc)


def renders() -> list[tuple[str, tuple[Doc, ...]]]:
    """Every values file, the default one both without and with ServiceMonitors."""
    return [(name, rendered(name)) for name in VALUES_FILES] + [
        ("default+monitoring", rendered("default", MONITORING))
    ]


def of_kind(docs: tuple[Doc, ...] | list[Doc], kind: str) -> list[Doc]:
    return [d for d in docs if d["kind"] == kind]


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and selector.items() <= labels.items()


def pod_labels(workload: Doc) -> dict[str, str]:
    labels: dict[str, str] = workload["spec"]["template"]["metadata"]["labels"]
    return labels


# ServiceMonitor is a custom resource kubernetes-validate has no schema for: the fields the
# chart uses, and nothing else.
LABELS_SCHEMA = {"type": "object", "additionalProperties": {"type": "string"}}
SERVICE_MONITOR_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "ServiceMonitor"},
        "metadata": {
            "type": "object",
            "additionalProperties": False,
            "required": ["name"],
            "properties": {
                "name": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
                "labels": LABELS_SCHEMA,
            },
        },
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["selector", "endpoints"],
            "properties": {
                "selector": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["matchLabels"],
                    "properties": {"matchLabels": LABELS_SCHEMA},
                },
                "endpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["port"],
                        "properties": {
                            "port": {"type": "string", "minLength": 1},
                            "path": {"type": "string", "pattern": "^/"},
                            "interval": {"type": "string", "pattern": "^([0-9]+(ms|s|m|h))+$"},
                        },
                    },
                },
            },
        },
    },
}


def validate(doc: Doc) -> None:
    """Strict schema validation; raises for a kind no schema here covers."""
    if doc.get("apiVersion") == "monitoring.coreos.com/v1":
        jsonschema.validate(doc, SERVICE_MONITOR_SCHEMA)
    else:
        kubernetes_validate.validate(doc, KUBERNETES, strict=True)


def test_helm_script_and_tests_agree_on_the_binary() -> None:
    assert HELM_VERSIONS == ["v4.3.2", "v3.21.4"]
    binary = helm_binary()  # fails, naming the script, when it is not built
    done = subprocess.run(
        ["sh", str(HELM_SCRIPT)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == str(binary)  # found, not built again
    check = subprocess.run(
        ["sh", str(HELM_SCRIPT), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (check.returncode, check.stdout) == (0, "")


def test_helm_script_check_names_the_missing_build_and_changes_nothing(tmp_path: Path) -> None:
    done = subprocess.run(
        ["sh", str(HELM_SCRIPT), "--check"],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "XDG_CACHE_HOME": str(tmp_path)},
    )
    assert (done.returncode, done.stdout) == (0, f"helm@{HELM_VERSIONS[0]}\n")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", list(VALUES_FILES))
def test_helm_lint_strict(name: str) -> None:
    done = helm("lint", "--strict", str(CHART), *values_args(name))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 chart(s) failed" in done.stdout, done.stdout


@pytest.mark.parametrize("name", list(VALUES_FILES))
def test_values_files_name_only_real_settings(name: str) -> None:
    values = yaml.safe_load((CHART / (VALUES_FILES[name] or "values.yaml")).read_text())
    assert set(values.get("settings", {})) <= VARIABLES
    extra = {e["name"] for e in values.get("extraEnv", [])}
    assert {n for n in extra if n.startswith("OPTIBID_")} <= VARIABLES


def test_every_rendered_manifest_validates_strictly() -> None:
    validated: dict[str, int] = {}
    for name, docs in renders():
        for doc in docs:
            where = f"{name}: {doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
            try:
                validate(doc)
            except kubernetes_validate.SchemaNotFoundError as exc:
                pytest.fail(f"{where}: no schema validates it ({exc.message})")
            except jsonschema.ValidationError as exc:  # kubernetes_validate's is one too
                pytest.fail(f"{where}: {'.'.join(map(str, exc.path))}: {exc.message}")
            validated[doc["kind"]] = validated.get(doc["kind"], 0) + 1
    assert set(validated) == {
        "ConfigMap", "Deployment", "HorizontalPodAutoscaler", "Job", "NetworkPolicy",
        "PodDisruptionBudget", "Service", "ServiceMonitor",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("kind", "change"),
    [
        ("Deployment", lambda d: d["spec"]["template"]["spec"].update(securityContex={})),
        ("Service", lambda d: d["spec"]["ports"][0].update(port="http")),
        ("ServiceMonitor", lambda d: d["spec"]["endpoints"][0].update(prot="metrics")),
        ("ServiceMonitor", lambda d: d["spec"]["endpoints"][0].update(interval="30 seconds")),
    ],
)
def test_validation_rejects_what_a_cluster_would(kind: str, change: Any) -> None:
    doc = copy.deepcopy(of_kind(rendered("default", MONITORING), kind)[0])
    validate(doc)
    change(doc)
    with pytest.raises(jsonschema.ValidationError):
        validate(doc)


def test_a_kind_without_schema_is_not_passed_over() -> None:
    with pytest.raises(kubernetes_validate.SchemaNotFoundError):
        validate({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}})


# -- hardening --------------------------------------------------------------------------------

ALLOWED_VOLUMES = {
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
    "projected", "secret",
}  # fmt: skip


def restricted_violations(pod: Doc, state_dir: str = "/var/lib/optibid") -> list[str]:
    """What keeps a pod spec from the Pod Security Standard "restricted" and this chart's own
    rules (read-only root with emptyDirs for /tmp and the state folder, no API token, no
    service links, resources)."""
    found = []
    pod_sc = pod.get("securityContext", {})
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(field):
            found.append(field)
    if pod.get("automountServiceAccountToken") is not False:
        found.append("automountServiceAccountToken")
    if pod.get("enableServiceLinks") is not False:
        found.append("enableServiceLinks")
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    for volume in volumes.values():
        if not set(volume) - {"name"} <= ALLOWED_VOLUMES:
            found.append(f"volume {volume['name']}")
    for c in pod["containers"] + pod.get("initContainers", []):
        sc = c.get("securityContext", {})

        def setting(field: str, sc: Doc = sc) -> Any:
            return sc.get(field, pod_sc.get(field))

        if setting("runAsNonRoot") is not True:
            found.append(f"{c['name']}: runAsNonRoot")
        for field in ("runAsUser", "runAsGroup"):
            value = setting(field)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                found.append(f"{c['name']}: {field}")
        if (setting("seccompProfile") or {}).get("type") not in ("RuntimeDefault", "Localhost"):
            found.append(f"{c['name']}: seccompProfile")
        if sc.get("allowPrivilegeEscalation") is not False:
            found.append(f"{c['name']}: allowPrivilegeEscalation")
        if sc.get("privileged"):
            found.append(f"{c['name']}: privileged")
        capabilities = sc.get("capabilities", {})
        if "ALL" not in capabilities.get("drop", []):
            found.append(f"{c['name']}: capabilities.drop")
        if not set(capabilities.get("add", [])) <= {"NET_BIND_SERVICE"}:
            found.append(f"{c['name']}: capabilities.add")
        if sc.get("readOnlyRootFilesystem") is not True:
            found.append(f"{c['name']}: readOnlyRootFilesystem")
        mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
        for path in ("/tmp", state_dir):  # the pod's own emptyDir
            if "emptyDir" not in volumes.get(mounts.get(path, ""), {}):
                found.append(f"{c['name']}: emptyDir at {path}")
        resources = c.get("resources", {})
        requests, limits = resources.get("requests", {}), resources.get("limits", {})
        if not {"cpu", "memory"} <= set(requests) or "memory" not in limits:
            found.append(f"{c['name']}: resources")
    return found


def pod_specs(docs: tuple[Doc, ...]) -> list[tuple[str, Doc]]:
    return [
        (f"{d['kind']}/{d['metadata']['name']}", d["spec"]["template"]["spec"])
        for d in docs
        if d["kind"] in ("Deployment", "Job")
    ]


def test_every_pod_is_restricted() -> None:
    for name, docs in renders():
        specs = pod_specs(docs)
        assert len(specs) > 10, name
        for where, pod in specs:
            assert restricted_violations(pod) == [], f"{name}: {where}"


def _at(pod: Doc, path: str) -> tuple[Any, Any]:
    """The container of the last key of a dotted PATH (numbers index lists), and that key."""
    keys: list[Any] = [int(k) if k.isdigit() else k for k in path.split(".")]
    node: Any = pod
    for key in keys[:-1]:
        node = node[key]
    return node, keys[-1]


def _drop(path: str) -> Any:
    def change(pod: Doc) -> None:
        node, key = _at(pod, path)
        del node[key]

    return change


def _set(path: str, value: Any) -> Any:
    def change(pod: Doc) -> None:
        node, key = _at(pod, path)
        node[key] = value

    return change


def _all(*changes: Any) -> Any:
    def change(pod: Doc) -> None:
        for one in changes:
            one(pod)

    return change


@pytest.mark.parametrize(
    ("change", "violation"),
    [
        (
            _all(
                _drop("securityContext.runAsNonRoot"),
                _drop("containers.0.securityContext.runAsNonRoot"),
            ),
            "runAsNonRoot",
        ),
        (_set("containers.0.securityContext.runAsNonRoot", False), "runAsNonRoot"),
        (_set("securityContext.runAsUser", "10001"), "runAsUser"),
        (_drop("securityContext.runAsGroup"), "runAsGroup"),
        (_set("securityContext.runAsUser", 0), "runAsUser"),
        (_set("containers.0.securityContext.seccompProfile", {"type": "Unconfined"}), "seccomp"),
        (_set("containers.0.securityContext.allowPrivilegeEscalation", True), "Escalation"),
        (_set("containers.0.securityContext.capabilities", {"drop": ["NET_RAW"]}), "drop"),
        (_set("containers.0.securityContext.capabilities.add", ["SYS_ADMIN"]), "add"),
        (_set("containers.0.securityContext.privileged", True), "privileged"),
        (_drop("containers.0.securityContext.readOnlyRootFilesystem"), "readOnlyRoot"),
        (_set("hostNetwork", True), "hostNetwork"),
        (_drop("automountServiceAccountToken"), "automountServiceAccountToken"),
        (_drop("enableServiceLinks"), "enableServiceLinks"),
        (_set("volumes.0", {"name": "tmp", "hostPath": {"path": "/tmp"}}), "/tmp"),
        (_set("volumes.1", {"name": "state", "hostPath": {"path": "/x"}}), "/var/lib/optibid"),
        (_drop("containers.0.resources.requests.cpu"), "resources"),
        (_drop("containers.0.resources.limits"), "resources"),
    ],
)
def test_restricted_check_finds_each_gap(change: Any, violation: str) -> None:
    pod = copy.deepcopy(of_kind(rendered("default"), "Deployment")[0]["spec"]["template"]["spec"])
    assert restricted_violations(pod) == []
    change(pod)
    assert any(violation in v for v in restricted_violations(pod)), restricted_violations(pod)


def roles_of(docs: tuple[Doc, ...]) -> set[str]:
    return {pod_labels(d)["app.kubernetes.io/component"] for d in of_kind(docs, "Deployment")}


def test_every_role_is_deployed_with_its_metrics_port() -> None:
    for name, docs in renders():
        assert roles_of(docs) == {*VALUES["roles"], "api", "connector"}, name
        for d in of_kind(docs, "Deployment"):
            (container,) = d["spec"]["template"]["spec"]["containers"]
            ports = {p["name"]: p["containerPort"] for p in container["ports"]}
            annotation = d["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"]
            assert int(annotation) in ports.values(), d["metadata"]["name"]
            role = pod_labels(d)["app.kubernetes.io/component"]
            if role in VALUES["roles"]:
                assert ports == {"metrics": VALUES["roles"][role]["metricsPort"]}
    assert len(of_kind(rendered("default"), "Deployment")) == len(VALUES["roles"]) + 1 + len(
        VALUES["connectors"]
    )


def probe_gaps(container: Doc, api_paths: set[str]) -> list[str]:
    """Probes missing, or aimed at a path or port the container does not serve."""
    gaps = []
    ports = {p["name"] for p in container.get("ports", [])}
    for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
        get = container.get(kind, {}).get("httpGet")
        if get is None:
            gaps.append(f"{container['name']}: {kind}")
        elif get["port"] not in ports:
            gaps.append(f"{container['name']}: {kind} port {get['port']}")
        elif get["path"] not in (api_paths if get["port"] == "http" else {"/metrics"}):
            gaps.append(f"{container['name']}: {kind} path {get['path']}")
    return gaps


def test_every_role_has_probes_on_what_it_serves() -> None:
    # the API's routes, from the code; the other roles serve prometheus_client's endpoint
    api_paths = {getattr(r, "path", "") for r in meta.router.routes}
    assert "/health" in api_paths
    for name, docs in renders():
        for d in of_kind(docs, "Deployment"):
            (container,) = d["spec"]["template"]["spec"]["containers"]
            assert probe_gaps(container, api_paths) == [], f"{name}: {d['metadata']['name']}"
    container = of_kind(rendered("default"), "Deployment")[0]["spec"]["template"]["spec"]
    broken = copy.deepcopy(container["containers"][0])
    del broken["startupProbe"]
    broken["livenessProbe"]["httpGet"]["port"] = "admin"
    broken["readinessProbe"]["httpGet"]["path"] = "/healthz"
    assert len(probe_gaps(broken, api_paths)) == 3


def without_budget(docs: tuple[Doc, ...] | list[Doc]) -> list[str]:
    """Deployments no PodDisruptionBudget covers alone (one that selects other pods too, or
    that forbids every eviction, does not count)."""
    budgets = of_kind(docs, "PodDisruptionBudget")
    pods = {d["metadata"]["name"]: pod_labels(d) for d in of_kind(docs, "Deployment")}
    missing = []
    for name, labels in pods.items():
        covering = [
            b
            for b in budgets
            if selects(b["spec"]["selector"]["matchLabels"], labels)
            and not any(
                selects(b["spec"]["selector"]["matchLabels"], other)
                for n, other in pods.items()
                if n != name
            )
            and b["spec"].get("maxUnavailable", 0) != 0
        ]
        if len(covering) != 1:
            missing.append(name)
    return missing


def test_every_deployment_has_a_disruption_budget() -> None:
    for name, docs in renders():
        assert without_budget(docs) == [], name
    some = list(rendered("default"))
    budget = next(d for d in some if d["kind"] == "PodDisruptionBudget")
    some.remove(budget)
    assert without_budget(some) == [budget["metadata"]["name"]]


def test_the_api_scales_on_cpu() -> None:
    for name, docs in renders():
        (deployment,) = [
            d for d in of_kind(docs, "Deployment") if d["metadata"]["name"].endswith("-api")
        ]
        (hpa,) = of_kind(docs, "HorizontalPodAutoscaler")
        assert hpa["apiVersion"] == "autoscaling/v2"
        target = hpa["spec"]["scaleTargetRef"]
        assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
        (metric,) = hpa["spec"]["metrics"]
        assert metric["resource"]["name"] == "cpu", name
        assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
        assert "replicas" not in deployment["spec"], "the autoscaler owns the replica count"
    auto = VALUES["api"]["autoscaling"]
    (hpa,) = of_kind(rendered("default"), "HorizontalPodAutoscaler")
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (
        auto["minReplicas"],
        auto["maxReplicas"],
    )
    fixed = rendered("default", "--set=api.autoscaling.enabled=false")
    assert of_kind(fixed, "HorizontalPodAutoscaler") == []
    api = next(d for d in of_kind(fixed, "Deployment") if d["metadata"]["name"].endswith("-api"))
    assert api["spec"]["replicas"] == VALUES["api"]["replicas"]


def unmonitored(docs: tuple[Doc, ...] | list[Doc]) -> list[str]:
    """Deployments whose metrics port no ServiceMonitor endpoint scrapes through a Service."""
    services = of_kind(docs, "Service")
    monitors = of_kind(docs, "ServiceMonitor")
    missing = []
    for d in of_kind(docs, "Deployment"):
        annotations = d["spec"]["template"]["metadata"]["annotations"]
        (container,) = d["spec"]["template"]["spec"]["containers"]
        port = next(
            p["name"]
            for p in container["ports"]
            if str(p["containerPort"]) == annotations["prometheus.io/port"]
        )
        scraped = any(
            selects(s["spec"]["selector"], pod_labels(d))
            and selects(m["spec"]["selector"]["matchLabels"], s["metadata"]["labels"])
            and any(
                e["port"] == sp["name"] and e.get("path", "/metrics") == "/metrics"
                for e in m["spec"]["endpoints"]
                for sp in s["spec"]["ports"]
                if sp["targetPort"] in (port, sp["port"])
            )
            for s in services
            for m in monitors
        )
        if not scraped:
            missing.append(d["metadata"]["name"])
    return missing


def test_every_metrics_port_has_a_service_monitor() -> None:
    assert of_kind(rendered("default"), "ServiceMonitor") == []  # no CRD needed by default
    for name, docs in renders()[1:]:
        assert unmonitored(docs) == [], name
    some = list(rendered("default", MONITORING))
    monitor = next(
        m for m in of_kind(some, "ServiceMonitor") if m["metadata"]["name"].endswith("-billing")
    )
    some.remove(monitor)
    assert unmonitored(some) == [f"{RELEASE}-billing"]


def test_network_policies_deny_by_default_and_open_what_is_served() -> None:
    for name, docs in renders():
        policies = of_kind(docs, "NetworkPolicy")
        pods = [pod_labels(d) for d in docs if d["kind"] in ("Deployment", "Job")]
        deny = [
            p
            for p in policies
            if "Ingress" in p["spec"]["policyTypes"]
            and not p["spec"].get("ingress")
            and all(selects(p["spec"]["podSelector"]["matchLabels"], labels) for labels in pods)
        ]
        assert deny, f"{name}: no default deny over every pod"
        ingress = {
            port["port"]
            for p in policies
            for rule in p["spec"].get("ingress", [])
            for port in rule["ports"]
        }
        assert ingress == {"http", "metrics"}, name
        metrics = next(p for p in policies if p["metadata"]["name"].endswith("-metrics"))
        (peer,) = metrics["spec"]["ingress"][0]["from"]
        assert {"namespaceSelector", "podSelector"} <= set(peer), name
        egress = [r for p in policies for r in p["spec"].get("egress", [])]
        if name.startswith("default"):
            assert egress == [{}]  # open by default
        else:
            assert {} not in egress
            dns = [r for r in egress if {"port": 53, "protocol": "UDP"} in r.get("ports", [])]
            assert dns, name
    closed = rendered("default", "--set=networkPolicy.enabled=false")
    assert of_kind(closed, "NetworkPolicy") == []


def test_rendered_settings_are_real_settings() -> None:
    for name, docs in renders():
        names = {
            e["name"]
            for d in docs
            if d["kind"] in ("Deployment", "Job")
            for c in d["spec"]["template"]["spec"]["containers"]
            for e in c.get("env", [])
        }
        (config,) = of_kind(docs, "ConfigMap")
        names |= set(config.get("data") or {})
        assert names <= VARIABLES, (name, names - VARIABLES)
