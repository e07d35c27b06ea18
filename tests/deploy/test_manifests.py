"""deploy/: the Kubernetes manifests are current with their renderer, valid for Kubernetes
(offline, strict schemas) and consistent with the settings the code reads: a readiness probe per
service, the drain window and grace, autoscaling, the edge, and placeholder secrets only."""

from __future__ import annotations

import base64
import binascii
import copy
import importlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml  # type: ignore[import-untyped]
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from optix_server.alert.config import AlertSettings
from optix_server.brokerage.config import BrokerageSettings, parse_token_keys
from optix_server.infra.auth.clock import SystemClock
from optix_server.infra.auth.config import AuthSettings
from optix_server.infra.auth.keys import KeyConfigError, load_keyring, private_key_pem
from optix_server.infra.env import SettingsError, env_secret
from optix_server.infra.metrics import METRICS_PATH
from optix_server.infra.settings import ALL_SERVICES, Settings
from optix_server.marketdata.config import MarketDataSettings
from optix_server.tools import k8s
from optix_server.user.config import UserSettings
from optix_server.watchlist.config import WatchlistSettings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
SERVER_SOURCES = ROOT / "server" / "optix_server"
ENVOY = Path(sys.executable).parent / "envoy"
# Validated against schemas bundled with kubernetes-validate (no network): the oldest version
# the manifests are meant for (the preStop sleep action is on by default from 1.30) and the
# newest the package knows.
K8S_VERSIONS = ("1.30.0", "1.37.0")
# The five services by full gRPC name (proto/optix/<svc>/v1/<svc>_service.proto).
SERVICE_NAMES = {
    "user": "optix.user.v1.UserService",
    "marketdata": "optix.marketdata.v1.MarketDataService",
    "watchlist": "optix.watchlist.v1.WatchlistService",
    "brokerage": "optix.brokerage.v1.BrokerageService",
    "alert": "optix.alert.v1.AlertService",
}
EDGE_STATS_PATHS = {"/stats/prometheus", "/ready"}
SERVE = ["optix", "serve"]
# Variables the code builds from parts (infra/settings.py: OPTIX_<SVC>_ADDRESS).
BUILT_NAMES = re.compile(rf"^OPTIX_({'|'.join(s.upper() for s in ALL_SERVICES)})_ADDRESS$")

Doc = dict[str, Any]

# envoy_data_plane (imported by the renderer) warns about pydantic APIs it uses.
pytestmark = pytest.mark.filterwarnings("ignore:Using `@model_validator`:DeprecationWarning")


# --- reading the manifests ------------------------------------------------------------------


def load(text: str) -> list[Doc]:
    """The documents of a YAML stream."""
    return [doc for doc in yaml.safe_load_all(text) if doc is not None]


@pytest.fixture(scope="module")
def committed() -> list[Doc]:
    """Every document of the committed deploy/ files."""
    return [doc for name, _ in k8s.FILES for doc in load((DEPLOY / name).read_text())]


def of_kind(docs: list[Doc], kind: str) -> list[Doc]:
    """The documents of one kind."""
    return [doc for doc in docs if doc["kind"] == kind]


def named(docs: list[Doc], kind: str, name: str) -> Doc:
    """The one document of `kind` called `name`."""
    found = [doc for doc in of_kind(docs, kind) if doc["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def pod_spec(workload: Doc) -> Doc:
    """The pod template's spec of a Deployment or Job."""
    spec: Doc = workload["spec"]["template"]["spec"]
    return spec


def container(workload: Doc) -> Doc:
    """The (only) container of a workload."""
    containers = pod_spec(workload)["containers"]
    assert len(containers) == 1
    first: Doc = containers[0]
    return first


def server_deployments(docs: list[Doc]) -> list[Doc]:
    """The Deployments running `optix serve`."""
    return [d for d in of_kind(docs, "Deployment") if container(d).get("command") == SERVE]


def edge_deployment(docs: list[Doc]) -> Doc:
    """The Deployment running Envoy."""
    found = [d for d in of_kind(docs, "Deployment") if container(d).get("command") == ["envoy"]]
    assert len(found) == 1
    return found[0]


def secret_values(docs: list[Doc]) -> dict[str, str]:
    """The Secret's values (stringData, or data decoded)."""
    secret = named(docs, "Secret", k8s.SECRETS)
    values = dict(secret.get("stringData", {}))
    for key, encoded in secret.get("data", {}).items():
        values[key] = base64.b64decode(encoded).decode()
    return values


def pod_env(
    docs: list[Doc], workload: Doc, secrets: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment a workload's container starts with: its ConfigMaps, then its own env,
    secret references resolved from `secrets` (default: the committed Secret)."""
    secrets = secret_values(docs) if secrets is None else secrets
    spec = container(workload)
    env: dict[str, str] = {}
    for source in spec.get("envFrom", []):
        env.update(named(docs, "ConfigMap", source["configMapRef"]["name"])["data"])
    for item in spec.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
            continue
        ref = item["valueFrom"]["secretKeyRef"]
        if ref["key"] in secrets:
            env[item["name"]] = secrets[ref["key"]]
    return env


def edge_config(docs: list[Doc]) -> Doc:
    """Envoy's configuration, from the edge's ConfigMap."""
    volumes = pod_spec(edge_deployment(docs))["volumes"]
    config_map = named(docs, "ConfigMap", volumes[0]["configMap"]["name"])
    (text,) = config_map["data"].values()
    return parse_envoy_config(text)


@cache
def parse_envoy_config(text: str) -> Doc:
    """Envoy's YAML, parsed once per text (the checks only read it)."""
    config: Doc = yaml.safe_load(text)
    return config


def seconds(duration: str) -> float:
    """A protobuf JSON duration ("3s", "1.500s") in seconds."""
    return float(duration.removesuffix("s"))


def port_named(workload: Doc, name: str) -> int:
    """A container port by name."""
    ports = {p["name"]: p["containerPort"] for p in container(workload).get("ports", [])}
    return int(ports[name])


def selects(selector: Mapping[str, str], workload: Doc) -> bool:
    """Whether a label selector picks the pods of a workload."""
    labels = workload["spec"]["template"]["metadata"]["labels"]
    return all(labels.get(k) == v for k, v in selector.items())


@cache
def server_source_text() -> str:
    """Every server source file, to look variable names up in."""
    return "\n".join(p.read_text() for p in sorted(SERVER_SOURCES.rglob("*.py")))


def admin_clusters(config: Doc) -> set[str]:
    """Names of the Envoy clusters that reach the admin endpoint on loopback."""
    port = config["admin"]["address"]["socketAddress"]["portValue"]
    found = set()
    for cluster in config["staticResources"]["clusters"]:
        for address in cluster_addresses(cluster):
            if address == ("127.0.0.1", port):
                found.add(cluster["name"])
    return found


def cluster_addresses(cluster: Doc) -> Iterator[tuple[str, int]]:
    """(host, port) of every endpoint of an Envoy cluster."""
    for locality in cluster["loadAssignment"]["endpoints"]:
        for endpoint in locality["lbEndpoints"]:
            socket = endpoint["endpoint"]["address"]["socketAddress"]
            yield socket["address"], int(socket["portValue"])


def routes(config: Doc) -> Iterator[Doc]:
    """Every route of every listener."""
    for listener in config["staticResources"]["listeners"]:
        for chain in listener["filterChains"]:
            for network_filter in chain["filters"]:
                route_config = network_filter["typedConfig"].get("routeConfig", {})
                for host in route_config.get("virtualHosts", []):
                    yield from host["routes"]


# --- the checks (each returns what is wrong; the committed files must have nothing) ----------


def check_replicas(docs: list[Doc]) -> list[str]:
    """At least two replicas everywhere, also as the autoscaler's floor."""
    problems = [
        f"Deployment {d['metadata']['name']} runs {d['spec'].get('replicas', 1)} replica(s)"
        for d in of_kind(docs, "Deployment")
        if d["spec"].get("replicas", 1) < 2
    ]
    for hpa in of_kind(docs, "HorizontalPodAutoscaler"):
        spec = hpa["spec"]
        if spec.get("minReplicas", 1) < 2 or spec["maxReplicas"] < spec.get("minReplicas", 1):
            problems.append(f"HPA {hpa['metadata']['name']} replicas {spec}")
    return problems


def check_readiness(docs: list[Doc]) -> list[str]:
    """A gRPC readiness probe on each service's own health, on the port the server binds."""
    problems: list[str] = []
    probed: set[str] = set()
    for deployment in server_deployments(docs):
        name = deployment["metadata"]["name"]
        settings = Settings.from_env(pod_env(docs, deployment))
        probe = container(deployment).get("readinessProbe", {}).get("grpc")
        wanted = {SERVICE_NAMES[svc] for svc in settings.services}
        if probe is None:
            problems.append(f"{name}: no gRPC readiness probe (wants {sorted(wanted)})")
            continue
        if probe.get("service") not in wanted:
            problems.append(f"{name}: readiness checks {probe.get('service')!r}, hosts {wanted}")
        if probe["port"] != settings.port or port_named(deployment, "grpc") != settings.port:
            problems.append(f"{name}: probe port {probe['port']}, server binds {settings.port}")
        probed.add(probe.get("service", ""))
    for missing in sorted(set(SERVICE_NAMES.values()) - probed):
        problems.append(f"no readiness probe for {missing}")
    return problems


def check_liveness(docs: list[Doc]) -> list[str]:
    """Start-up and liveness probes on gRPC health; liveness slower than a whole termination, so
    a draining replica (NOT_SERVING) is never restarted."""
    problems: list[str] = []
    for deployment in server_deployments(docs):
        name = deployment["metadata"]["name"]
        spec = container(deployment)
        for kind in ("startupProbe", "livenessProbe"):
            if "grpc" not in spec.get(kind, {}):
                problems.append(f"{name}: no gRPC {kind}")
        liveness = spec.get("livenessProbe", {})
        gives_up = liveness.get("periodSeconds", 10) * liveness.get("failureThreshold", 3)
        grace = pod_spec(deployment)["terminationGracePeriodSeconds"]
        if liveness and gives_up <= grace:
            problems.append(f"{name}: liveness gives up after {gives_up} s, termination {grace} s")
    return problems


def check_termination(docs: list[Doc]) -> list[str]:
    """preStop = the drain window, termination grace >= drain + grace + margin, and the drain
    outlasts the time Envoy's health checks take to drop a NOT_SERVING replica."""
    problems: list[str] = []
    config = edge_config(docs)
    drop_after = max(
        seconds(hc["interval"]) * hc["unhealthyThreshold"] + seconds(hc["timeout"])
        for cluster in config["staticResources"]["clusters"]
        for hc in cluster.get("healthChecks", [])
    )
    for deployment in server_deployments(docs):
        name = deployment["metadata"]["name"]
        settings = Settings.from_env(pod_env(docs, deployment))
        drain, grace = settings.drain_seconds, settings.shutdown_grace_seconds
        period = pod_spec(deployment).get("terminationGracePeriodSeconds", 30)
        hook = container(deployment).get("lifecycle", {}).get("preStop", {}).get("exec", {})
        command = hook.get("command", [])
        if command[:2] != ["python", "-c"] or len(command) != 5:
            problems.append(f"{name}: preStop hook {command} does not start the drain")
        elif float(command[-1]) != drain or command[-2] != "1":
            problems.append(f"{name}: preStop waits {command[-1]} s, the drain window is {drain} s")
        if period < drain + grace + 1:
            problems.append(
                f"{name}: terminationGracePeriodSeconds {period} < drain {drain} + grace {grace}"
                " + a margin"
            )
        if drain <= drop_after:
            problems.append(f"{name}: drain {drain} s ends before Envoy drops it ({drop_after} s)")
    edge = edge_deployment(docs)
    sleep = container(edge).get("lifecycle", {}).get("preStop", {}).get("sleep", {})
    if sleep.get("seconds", 0) + 1 > pod_spec(edge).get("terminationGracePeriodSeconds", 30):
        problems.append(f"edge: preStop {sleep} does not fit its terminationGracePeriodSeconds")
    return problems


def check_autoscaling(docs: list[Doc]) -> list[str]:
    """One CPU HPA and one PDB per Deployment, each aimed at it."""
    problems: list[str] = []
    deployments = {d["metadata"]["name"]: d for d in of_kind(docs, "Deployment")}
    scaled: list[str] = []
    for hpa in of_kind(docs, "HorizontalPodAutoscaler"):
        target = hpa["spec"]["scaleTargetRef"]
        if (target["apiVersion"], target["kind"]) != ("apps/v1", "Deployment") or target[
            "name"
        ] not in deployments:
            problems.append(f"HPA {hpa['metadata']['name']} targets {target}, no such Deployment")
        metrics = [m["resource"]["name"] for m in hpa["spec"].get("metrics", []) if "resource" in m]
        if "cpu" not in metrics:
            problems.append(f"HPA {hpa['metadata']['name']} does not scale on CPU")
        scaled.append(target["name"])
    budgeted: list[str] = []
    for pdb in of_kind(docs, "PodDisruptionBudget"):
        selector = pdb["spec"]["selector"]["matchLabels"]
        matching = [name for name, d in deployments.items() if selects(selector, d)]
        if len(matching) != 1:
            problems.append(f"PDB {pdb['metadata']['name']} selects Deployments {matching}")
            continue
        budgeted.append(matching[0])
        replicas = deployments[matching[0]]["spec"].get("replicas", 1)
        spec = pdb["spec"]
        if spec.get("maxUnavailable", 0) < 1 and spec.get("minAvailable", replicas) >= replicas:
            problems.append(f"PDB {pdb['metadata']['name']} allows no disruption at all")
    for name in deployments:
        if scaled.count(name) != 1 or budgeted.count(name) != 1:
            problems.append(
                f"Deployment {name}: {scaled.count(name)} HPA, {budgeted.count(name)} PDB"
            )
    return problems


def check_services(docs: list[Doc]) -> list[str]:
    """Services pick pods and named ports that exist; Envoy's upstreams are headless Services of
    the manifests; the public edge Service exposes neither Envoy's admin nor its stats."""
    problems: list[str] = []
    workloads = of_kind(docs, "Deployment")
    services = {s["metadata"]["name"]: s for s in of_kind(docs, "Service")}
    for name, service in services.items():
        picked = [w for w in workloads if selects(service["spec"]["selector"], w)]
        if not picked:
            problems.append(f"Service {name} selects no pods")
        for port in service["spec"]["ports"]:
            names = {p["name"] for w in picked for p in container(w).get("ports", [])}
            if isinstance(port["targetPort"], str) and port["targetPort"] not in names:
                problems.append(f"Service {name}: no container port {port['targetPort']!r}")
    config = edge_config(docs)
    admin = admin_clusters(config)
    for cluster in config["staticResources"]["clusters"]:
        if cluster["name"] in admin:
            continue
        for host, port in cluster_addresses(cluster):
            upstream = services.get(host)
            if upstream is None or upstream["spec"].get("clusterIP") != "None":
                problems.append(f"Envoy cluster {cluster['name']}: {host} is no headless Service")
            elif port not in {p["port"] for p in upstream["spec"]["ports"]}:
                problems.append(f"Envoy cluster {cluster['name']}: {host} has no port {port}")
    admin_address = config["admin"]["address"]["socketAddress"]
    if admin_address["address"] != "127.0.0.1":
        problems.append(f"Envoy admin listens on {admin_address['address']}")
    edge = edge_deployment(docs)
    hidden = {admin_address["portValue"], port_named(edge, "stats"), "stats"}
    for name, service in services.items():
        if selects(service["spec"]["selector"], edge):
            for port in service["spec"]["ports"]:
                if {port["port"], port["targetPort"]} & hidden:
                    problems.append(f"Service {name} exposes Envoy's admin or stats: {port}")
    for route in routes(config):
        to_admin = route.get("route", {}).get("cluster") in admin
        if to_admin and route["match"].get("path") not in EDGE_STATS_PATHS:
            problems.append(f"Envoy forwards {route['match']} to its admin endpoint")
    return problems


def check_metrics(docs: list[Doc]) -> list[str]:
    """Scrape annotations name the metrics port the server serves and its path; Envoy's name
    the stats port, where only /stats/prometheus (and /ready) reach the admin endpoint."""
    problems: list[str] = []
    for deployment in server_deployments(docs):
        name = deployment["metadata"]["name"]
        settings = Settings.from_env(pod_env(docs, deployment))
        notes = deployment["spec"]["template"]["metadata"].get("annotations", {})
        scrape = (
            notes.get("prometheus.io/scrape"),
            notes.get("prometheus.io/port"),
            notes.get("prometheus.io/path"),
        )
        if scrape != ("true", str(settings.metrics_port), METRICS_PATH):
            problems.append(f"{name}: scrape {scrape}, metrics on {settings.metrics_port}")
        if (
            settings.metrics_port is None
            or port_named(deployment, "metrics") != settings.metrics_port
        ):
            problems.append(f"{name}: metrics port {settings.metrics_port} is no container port")
    edge = edge_deployment(docs)
    notes = edge["spec"]["template"]["metadata"].get("annotations", {})
    if notes.get("prometheus.io/port") != str(port_named(edge, "stats")):
        problems.append(
            f"edge: scrape port {notes.get('prometheus.io/port')} is not its stats port"
        )
    admin = admin_clusters(edge_config(docs))
    path = notes.get("prometheus.io/path")
    if not any(
        r["match"].get("path") == path and r.get("route", {}).get("cluster") in admin
        for r in routes(edge_config(docs))
    ):
        problems.append(f"edge: nothing serves the scrape path {path}")
    return problems


def check_host(docs: list[Doc]) -> list[str]:
    """The server binds every address of the pod, or probes and Envoy cannot reach it."""
    return [
        f"{d['metadata']['name']}: binds {Settings.from_env(pod_env(docs, d)).host}"
        for d in server_deployments(docs)
        if Settings.from_env(pod_env(docs, d)).host != "0.0.0.0"
    ]


def _rejected(read: Callable[[str], object], value: str) -> bool:
    """Whether the code's reader refuses `value` as a setting."""
    try:
        read(value)
    except (SettingsError, KeyConfigError):
        return True
    return False


def _looks_like_key(value: str) -> bool:
    """Whether some word of `value` is base64 of 16 bytes or more (a key, a pepper)."""
    for word in re.findall(r"[A-Za-z0-9+/=]{20,}", value):
        try:
            if len(base64.b64decode(word, validate=True)) >= 16:
                return True
        except (binascii.Error, ValueError):
            continue
    return False


def check_secrets(docs: list[Doc]) -> list[str]:
    """The committed Secret holds placeholders only, each refused by the code's own readers (a
    pod started with one stops at once); every reference names a key it has; the ConfigMaps
    hold none of them."""
    problems: list[str] = []
    values = secret_values(docs)
    for key, value in values.items():
        if "REPLACE_ME" not in value or "-----BEGIN" in value or _looks_like_key(value):
            problems.append(f"Secret {key} looks like a real value")
        url = urlsplit(value)
        if url.scheme and url.hostname and not url.hostname.endswith(".invalid"):
            problems.append(f"Secret {key} points at a real host {url.hostname}")
    readers: dict[str, Callable[[str], object]] = {
        "OPTIX_USER_PEPPER": lambda v: env_secret({"P": v}, "P"),
        "OPTIX_ALERT_SECRET_KEY": lambda v: env_secret({"P": v}, "P"),
        "OPTIX_BROKERAGE_TOKEN_KEYS": parse_token_keys,
        "OPTIX_AUTH_SIGNING_KEYS_PEM": lambda v: load_keyring(
            AuthSettings(signing_keys_pem=v), SystemClock(), Path("/nonexistent")
        ),
    }
    for key, read in readers.items():
        if key not in values:
            problems.append(f"Secret has no {key}")
        elif not _rejected(read, values[key]):
            problems.append(f"Secret {key}: the code accepts it, so it is a usable value")
    referenced: set[str] = set()
    for workload in [*of_kind(docs, "Deployment"), *of_kind(docs, "Job")]:
        for item in container(workload).get("env", []):
            ref = item.get("valueFrom", {}).get("secretKeyRef")
            if ref is None:
                continue
            referenced.add(ref["key"])
            if ref["name"] != k8s.SECRETS or (ref["key"] not in values and not ref.get("optional")):
                problems.append(f"{workload['metadata']['name']}: {ref} is not in the Secret")
    for unused in sorted(set(values) - referenced):
        problems.append(f"Secret {unused} is read by no pod")
    for config_map in of_kind(docs, "ConfigMap"):
        for key, value in config_map["data"].items():
            if key in values or re.search(r"://[^/\s]*@", value):
                problems.append(f"ConfigMap {config_map['metadata']['name']}: {key} is a secret")
    return problems


def check_pods(docs: list[Doc]) -> list[str]:
    """No service links (they would add OPTIX_* variables of every Service), never root."""
    problems: list[str] = []
    for workload in [*of_kind(docs, "Deployment"), *of_kind(docs, "Job")]:
        spec = pod_spec(workload)
        name = workload["metadata"]["name"]
        if spec.get("enableServiceLinks", True):
            problems.append(f"{name}: service links on")
        if not spec.get("securityContext", {}).get("runAsNonRoot"):
            problems.append(f"{name}: may run as root")
    return problems


def check_variables(docs: list[Doc]) -> list[str]:
    """Every OPTIX_* variable the manifests set is one the code reads (no typo goes unseen)."""
    names: set[str] = set()
    for config_map in of_kind(docs, "ConfigMap"):
        names.update(k for k in config_map["data"] if k.startswith("OPTIX_"))
    for workload in [*of_kind(docs, "Deployment"), *of_kind(docs, "Job")]:
        names.update(item["name"] for item in container(workload).get("env", []))
    source = server_source_text()
    return [
        f"{name} is not read by the code"
        for name in sorted(names)
        if name.startswith("OPTIX_") and f'"{name}"' not in source and not BUILT_NAMES.match(name)
    ]


def check_migration(docs: list[Doc]) -> list[str]:
    """A Job runs `optix migrate` once against the database from the Secret."""
    jobs = [j for j in of_kind(docs, "Job") if container(j).get("command") == ["optix", "migrate"]]
    if len(jobs) != 1:
        return [f"{len(jobs)} migration Jobs"]
    problems = []
    if "OPTIX_DATABASE_URL" not in pod_env(docs, jobs[0]):
        problems.append("the migration Job has no OPTIX_DATABASE_URL")
    if pod_spec(jobs[0])["restartPolicy"] not in ("Never", "OnFailure"):
        problems.append("the migration Job restarts forever")
    return problems


CHECKS = (
    check_replicas,
    check_readiness,
    check_liveness,
    check_termination,
    check_autoscaling,
    check_services,
    check_metrics,
    check_host,
    check_secrets,
    check_pods,
    check_variables,
    check_migration,
)


def all_problems(docs: list[Doc]) -> list[str]:
    """What every check finds."""
    return [problem for check in CHECKS for problem in check(docs)]


# --- tests ----------------------------------------------------------------------------------


def test_committed_files_match_a_fresh_render() -> None:
    fresh = k8s.render_files(k8s.DeploySettings())
    assert sorted(p.name for p in DEPLOY.glob("*.yaml")) == sorted(fresh)
    for name, text in fresh.items():
        assert (DEPLOY / name).read_text() == text, (
            f"deploy/{name} is stale: run `make deploy-config` and commit it"
        )


def test_the_yaml_reads_back_as_the_rendered_documents(committed: list[Doc]) -> None:
    rendered = k8s.render_documents(k8s.DeploySettings())
    assert committed == [doc for name, _ in k8s.FILES for doc in rendered[name]]


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_document_is_valid_for_kubernetes(committed: list[Doc], version: str) -> None:
    assert kubernetes_validate.utils.major_minor(version) in {
        kubernetes_validate.utils.major_minor(v) for v in kubernetes_validate.utils.all_versions()
    }
    failures = []
    for doc in committed:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            failures.append(f"{doc['kind']} {doc['metadata']['name']}: {error.message}")
    assert failures == []


def test_strict_validation_refuses_an_unknown_field(committed: list[Doc]) -> None:
    deployment = copy.deepcopy(server_deployments(committed)[0])
    container(deployment)["readinessProbes"] = container(deployment)["readinessProbe"]
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSIONS[-1], strict=True)


def test_the_committed_manifests_pass_every_check(committed: list[Doc]) -> None:
    assert all_problems(committed) == []


def test_one_deployment_per_service_hosts_only_it(committed: list[Doc]) -> None:
    hosted = sorted(
        svc
        for d in server_deployments(committed)
        for svc in Settings.from_env(pod_env(committed, d)).services
    )
    assert hosted == sorted(ALL_SERVICES)
    discovered = {
        svc: next(
            s.full_name
            for s in importlib.import_module(
                f"optix.{svc}.v1.{svc}_service_pb2"
            ).DESCRIPTOR.services_by_name.values()
        )
        for svc in ALL_SERVICES
    }
    assert discovered == SERVICE_NAMES


def _set_config(name: str, value: str) -> Callable[[list[Doc]], None]:
    def mutate(docs: list[Doc]) -> None:
        named(docs, "ConfigMap", k8s.CONFIG)["data"][name] = value

    return mutate


def _on(kind: str, name: str, change: Callable[[Doc], None]) -> Callable[[list[Doc]], None]:
    def mutate(docs: list[Doc]) -> None:
        change(named(docs, kind, name))

    return mutate


def _expose_admin(service: Doc) -> None:
    service["spec"]["ports"].append({"name": "admin", "port": 9901, "targetPort": 9901})


def _real_pepper(docs: list[Doc]) -> None:
    secret = named(docs, "Secret", k8s.SECRETS)
    secret["stringData"]["OPTIX_USER_PEPPER"] = base64.b64encode(os.urandom(32)).decode()


def _retarget(hpa: Doc) -> None:
    hpa["spec"]["scaleTargetRef"]["name"] = "optix-users"


MUTATIONS: dict[str, tuple[Callable[[list[Doc]], None], str]] = {
    "one replica": (
        _on("Deployment", "optix-user", lambda d: d["spec"].update(replicas=1)),
        "replica",
    ),
    "no readiness probe": (
        _on("Deployment", "optix-alert", lambda d: container(d).pop("readinessProbe")),
        "optix.alert.v1.AlertService",
    ),
    "readiness on the overall health": (
        _on(
            "Deployment",
            "optix-watchlist",
            lambda d: container(d)["readinessProbe"]["grpc"].update(service=""),
        ),
        "optix.watchlist.v1.WatchlistService",
    ),
    "no liveness probe": (
        _on("Deployment", "optix-brokerage", lambda d: container(d).pop("livenessProbe")),
        "livenessProbe",
    ),
    "termination too short": (
        _on(
            "Deployment",
            "optix-user",
            lambda d: pod_spec(d).update(terminationGracePeriodSeconds=12),
        ),
        "terminationGracePeriodSeconds",
    ),
    "preStop shorter than the drain": (
        _on(
            "Deployment",
            "optix-marketdata",
            lambda d: container(d)["lifecycle"]["preStop"]["exec"]["command"].__setitem__(-1, "3"),
        ),
        "preStop waits 3 s",
    ),
    "drain shorter than Envoy's health checks": (_set_config("OPTIX_DRAIN_SECONDS", "4"), "Envoy"),
    "HPA aimed elsewhere": (_on("HorizontalPodAutoscaler", "optix-user", _retarget), "targets"),
    "PDB selecting nothing": (
        _on(
            "PodDisruptionBudget",
            "optix-alert",
            lambda p: p["spec"]["selector"]["matchLabels"].update({"app.kubernetes.io/name": "x"}),
        ),
        "PDB optix-alert",
    ),
    "a real-looking secret": (_real_pepper, "OPTIX_USER_PEPPER"),
    "admin on the public Service": (_on("Service", k8s.EDGE, _expose_admin), "admin"),
    "scrape on the wrong port": (
        _on(
            "Deployment",
            "optix-user",
            lambda d: d["spec"]["template"]["metadata"]["annotations"].update(
                {"prometheus.io/port": "9000"}
            ),
        ),
        "scrape",
    ),
    "server on loopback": (_set_config("OPTIX_HOST", "127.0.0.1"), "binds 127.0.0.1"),
    "a misspelt variable": (_set_config("OPTIX_DRAIN_SECOND", "10"), "OPTIX_DRAIN_SECOND is not"),
    "service links": (
        _on("Deployment", k8s.EDGE, lambda d: pod_spec(d).update(enableServiceLinks=True)),
        "service links",
    ),
}


@pytest.mark.parametrize("fault", sorted(MUTATIONS))
def test_the_checks_catch_a_broken_manifest(committed: list[Doc], fault: str) -> None:
    mutate, expected = MUTATIONS[fault]
    broken = copy.deepcopy(committed)
    mutate(broken)
    problems = all_problems(broken)
    assert any(expected in problem for problem in problems), problems


def _valid_secrets() -> dict[str, str]:
    """Values the code accepts for every key of the Secret (throwaway, made here)."""

    def key() -> str:
        return base64.b64encode(os.urandom(32)).decode()

    return {
        "OPTIX_DATABASE_URL": "postgresql+asyncpg://optix:pw@db.example.invalid:5432/optix",
        "OPTIX_REDIS_URL": "redis://:pw@redis.example.invalid:6379/0",
        "OPTIX_AUTH_SIGNING_KEYS_PEM": private_key_pem(Ed25519PrivateKey.generate()).decode(),
        "OPTIX_USER_PEPPER": key(),
        "OPTIX_BROKERAGE_TOKEN_KEYS": f"k1:{key()}",
        "OPTIX_ALERT_SECRET_KEY": key(),
    }


@pytest.mark.parametrize("service", ALL_SERVICES)
def test_the_code_reads_a_pods_settings(committed: list[Doc], service: str, tmp_path: Path) -> None:
    secrets = _valid_secrets()
    assert set(secrets) == set(secret_values(committed))
    deployment = named(committed, "Deployment", k8s.server_name(service))
    settings = Settings.from_env(pod_env(committed, deployment, secrets))
    assert settings.services == (service,)
    assert settings.database_url == secrets["OPTIX_DATABASE_URL"]
    assert settings.redis_url == secrets["OPTIX_REDIS_URL"]
    assert set(settings.service_addresses) == set(ALL_SERVICES)
    assert not settings.auth.generate_missing_key
    for section in (
        UserSettings,
        MarketDataSettings,
        WatchlistSettings,
        BrokerageSettings,
        AlertSettings,
    ):
        section.from_env(settings.env)
    load_keyring(settings.auth, SystemClock(), tmp_path)
    if service == "user":
        assert UserSettings.from_env(settings.env).pepper is not None
    if service == "alert":
        assert AlertSettings.from_env(settings.env).secret_key is not None


def test_the_prestop_hook_starts_the_drain_and_waits_it_out(
    committed: list[Doc], tmp_path: Path
) -> None:
    hook = container(server_deployments(committed)[0])["lifecycle"]["preStop"]["exec"]["command"]
    marker = tmp_path / "terminated"
    server = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import pathlib, signal, sys, time\n"
            "def stop(*_): pathlib.Path(sys.argv[1]).write_text('SIGTERM'); sys.exit(0)\n"
            "signal.signal(signal.SIGTERM, stop)\n"
            "print('ready', flush=True)\n"
            "time.sleep(60)\n",
            str(marker),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        # The pod's hook, aimed at this stand-in for the server and with a short drain window.
        started = time.monotonic()
        subprocess.run(
            [sys.executable, *hook[1:-2], str(server.pid), "0.5"], check=True, timeout=30
        )
        took = time.monotonic() - started
        assert server.wait(timeout=10) == 0
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGKILL)
            server.wait()
    assert marker.read_text() == "SIGTERM"
    assert took >= 0.5


@pytest.mark.skipif(not ENVOY.exists(), reason="envoy is not installed in the venv")
def test_envoy_accepts_the_edge_config(committed: list[Doc], tmp_path: Path) -> None:
    config = tmp_path / "envoy.yaml"
    config.write_text(yaml.safe_dump(edge_config(committed)))
    done = subprocess.run(
        [str(ENVOY), "--mode", "validate", "-c", str(config), "--disable-hot-restart"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_other_settings_render_consistent_manifests(tmp_path: Path) -> None:
    deploy = k8s.DeploySettings(
        image="registry.example/optix:1.2.3", replicas=3, max_replicas=6, drain_seconds=20
    )
    docs = [doc for files in k8s.render_documents(deploy).values() for doc in files]
    assert all_problems(docs) == []
    for deployment in server_deployments(docs):
        assert container(deployment)["image"] == "registry.example/optix:1.2.3"
        assert deployment["spec"]["replicas"] == 3
        assert pod_spec(deployment)["terminationGracePeriodSeconds"] == 20 + 5 + 5


def test_the_command_line_writes_the_committed_files(tmp_path: Path) -> None:
    k8s.main(["--out", str(tmp_path)])
    for name, _ in k8s.FILES:
        assert (tmp_path / name).read_text() == (DEPLOY / name).read_text()
