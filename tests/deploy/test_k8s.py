"""The Kubernetes manifests: valid against the Kubernetes 1.37 schemas (offline, strict) and
following our rules: probes, resources, non-root, pinned images, PDBs for what serves."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
VERSION = "1.37.0"


def documents() -> list[tuple[str, dict[str, Any]]]:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    out = []
    for name in kustomization["resources"]:
        for doc in yaml.safe_load_all((K8S / name).read_text()):
            if doc:
                out.append((f"{name}:{doc['kind']}/{doc['metadata']['name']}", doc))
    return out


DOCS = documents()


def test_every_manifest_file_is_listed() -> None:
    listed = set(yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"])
    assert {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"} == listed


@pytest.mark.parametrize(("where", "doc"), DOCS, ids=[w for w, _ in DOCS])
def test_valid_against_the_kubernetes_schema(where: str, doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, VERSION, strict=True)


def test_workloads_follow_our_rules() -> None:
    workloads = [(w, d) for w, d in DOCS if d["kind"] in ("Deployment", "StatefulSet")]
    assert {d["metadata"]["name"] for _, d in workloads} >= {
        "embedder", "embedder-cpu", "classifier", "trainer", "trainer-worker", "gateway"}
    for where, doc in workloads:
        pod = doc["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, where
        for container in pod["containers"]:
            assert ":" in container["image"] and not container["image"].endswith(":latest"), where
            assert "readinessProbe" in container and "livenessProbe" in container, where
            assert container["resources"]["requests"] and container["resources"]["limits"], where
    gpu = next(d for _, d in workloads if d["metadata"]["name"] == "embedder")
    limits = gpu["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert limits["nvidia.com/gpu"] == "1"
    kinds = {(d["kind"], d["metadata"]["name"]) for _, d in DOCS}
    assert {("HorizontalPodAutoscaler", "classifier"), ("Ingress", "gateway"),
            ("PodDisruptionBudget", "gateway"), ("PodDisruptionBudget", "classifier")} <= kinds


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A Kubernetes label selector (matchLabels, matchExpressions with In/NotIn) on labels."""
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expr in selector.get("matchExpressions", []):
        inside = labels.get(expr["key"]) in expr["values"]
        if inside != (expr["operator"] == "In"):
            return False
    return True


def _may_connect(source: dict[str, str] | None, target: dict[str, str], port: int) -> bool:
    """Whether the NetworkPolicies let ``source`` (a pod's labels in the namespace, or None for
    anything outside it) open ``port`` on a pod labelled ``target``."""
    policies = [d for _, d in DOCS if d["kind"] == "NetworkPolicy"
                and "Ingress" in d["spec"]["policyTypes"]
                and _selects(d["spec"]["podSelector"], target)]
    if not policies:
        return True
    for policy in policies:
        for rule in policy["spec"].get("ingress", []):
            ports = [p["port"] for p in rule.get("ports", [])]
            peers = rule.get("from")
            if (not ports or port in ports) and (not peers or source is not None and any(
                    "podSelector" in peer and "namespaceSelector" not in peer
                    and _selects(peer["podSelector"], source) for peer in peers)):
                return True
    return False


def test_network_policies_let_only_the_gateway_reach_the_internal_services() -> None:
    pods = {d["metadata"]["name"]: d["spec"]["template"]["metadata"]["labels"]
            for _, d in DOCS if d["kind"] in ("Deployment", "StatefulSet")}
    ports = {"gateway": 8000, "classifier": 8002, "trainer": 8003, "embedder": 8001,
             "embedder-cpu": 8001}
    allowed = {("gateway", "classifier"), ("gateway", "trainer"), ("classifier", "embedder"),
               ("trainer", "embedder"), ("trainer-worker", "embedder"),
               ("classifier", "embedder-cpu"), ("trainer", "embedder-cpu"),
               ("trainer-worker", "embedder-cpu")}
    for target, port in ports.items():
        assert _may_connect(None, pods[target], port) == (target == "gateway"), target
        for source, labels in pods.items():
            expected = target == "gateway" or (source, target) in allowed
            assert _may_connect(labels, pods[target], port) == expected, (source, target)
    assert not _may_connect(pods["gateway"], pods["trainer"], 9999)  # only the service port


def test_every_pod_has_a_writable_prometheus_multiproc_dir() -> None:
    """The ConfigMap sets PROMETHEUS_MULTIPROC_DIR for every workload: each mounts an emptyDir
    there (prometheus-client fails when the folder does not exist)."""
    config = next(d for _, d in DOCS if d["kind"] == "ConfigMap")
    folder = config["data"]["PROMETHEUS_MULTIPROC_DIR"]
    for where, doc in DOCS:
        if doc["kind"] not in ("Deployment", "StatefulSet"):
            continue
        pod = doc["spec"]["template"]["spec"]
        empty = {v["name"] for v in pod.get("volumes", []) if "emptyDir" in v}
        for container in pod["containers"]:
            mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
            assert mounts.get(folder) in empty, (where, container["name"])


def test_the_secret_carries_the_internal_token() -> None:
    secret = next(d for _, d in DOCS if d["kind"] == "Secret")
    assert "POLYHEAD_INTERNAL_TOKEN" in secret["stringData"]


def _doc(kind: str, name: str) -> dict[str, Any]:
    return next(d for _, d in DOCS if d["kind"] == kind and d["metadata"]["name"] == name)


def test_gateways_see_the_classifier_pods_one_by_one() -> None:
    """CLASSIFIER_URLS names a headless Service of the classifier pods: each gateway ejects a
    broken replica alone (a Service's one virtual IP would hide which one is broken)."""
    url = _doc("ConfigMap", "polyhead-config")["data"]["CLASSIFIER_URLS"]
    host = url.split("//")[1].split(":")[0]
    service = _doc("Service", host)
    assert service["spec"]["clusterIP"] == "None"
    classifier_pods = _doc("Deployment", "classifier")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= classifier_pods.items()


def test_the_gateway_believes_forwarded_headers_from_its_proxies_only() -> None:
    trusted = _doc("ConfigMap", "polyhead-config")["data"]["GATEWAY_TRUSTED_PROXIES"]
    assert trusted and "*" not in trusted


def _nginx_directives(block: str) -> dict[str, str]:
    return dict(re.findall(r"^\s*((?:proxy|client)_[a-z_]+)\s+([^;]+);", block, re.M))


@pytest.mark.parametrize(("ingress", "location"), [
    ("gateway", "location / {"),
    ("gateway-predict", "location ~ ^/v1/models/[^/]+/predict$ {")])
def test_the_ingresses_match_the_nginx_config_the_topology_tests_run(ingress: str,
                                                                     location: str) -> None:
    """deploy/nginx/gateway.conf plays the Ingresses in tests/topology: same timeouts, retries
    and body size for each path as its Ingress's annotations."""
    annotations = _doc("Ingress", ingress)["metadata"]["annotations"]
    prefix = "nginx.ingress.kubernetes.io/"
    conf = (K8S.parent / "nginx" / "gateway.conf").read_text()
    server = re.sub(r"\n\s*location [^{]*\{[^}]*\}", "", conf)  # what every location inherits
    block = conf[conf.index(location):]
    directives = _nginx_directives(server) | _nginx_directives(block[:block.index("}")])
    for annotation, directive, unit in [
            ("proxy-connect-timeout", "proxy_connect_timeout", "s"),
            ("proxy-read-timeout", "proxy_read_timeout", "s"),
            ("proxy-send-timeout", "proxy_send_timeout", "s"),
            ("proxy-next-upstream", "proxy_next_upstream", ""),
            ("proxy-next-upstream-tries", "proxy_next_upstream_tries", ""),
            ("proxy-next-upstream-timeout", "proxy_next_upstream_timeout", "s"),
            ("proxy-body-size", "client_max_body_size", "")]:
        assert directives[directive] == annotations[prefix + annotation] + unit, annotation
    path = _doc("Ingress", ingress)["spec"]["rules"][0]["http"]["paths"][0]["path"]
    assert path == "/" or f"^{path}$" in location


def test_the_edge_waits_longer_for_a_prediction_than_the_gateway_takes() -> None:
    """Only a stuck gateway makes the edge ask another for a prediction, never a slow model."""
    from shared.settings import GatewaySettings

    deadline = GatewaySettings.model_fields["predict_deadline_s"].default
    predict = _doc("Ingress", "gateway-predict")["metadata"]["annotations"]
    assert float(predict["nginx.ingress.kubernetes.io/proxy-read-timeout"]) > deadline
    haproxy = (K8S.parent / "haproxy" / "gateway.cfg").read_text()
    timeout = re.search(r"set-timeout server (\d+)s if predict", haproxy)
    assert timeout and float(timeout.group(1)) > deadline


@pytest.mark.parametrize("name", ["gateway", "classifier"])
def test_a_pod_leaves_its_endpoints_before_it_stops(name: str) -> None:
    """preStop pauses while the endpoints drop the pod; the grace period then covers gunicorn's
    graceful stop and, for the gateway, the inference log's drain (README: the loss table)."""
    from shared.gunicorn import common
    from shared.settings import GatewaySettings

    kind = "StatefulSet" if name == "gateway" else "Deployment"
    pod = _doc(kind, name)["spec"]["template"]["spec"]
    command = pod["containers"][0]["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    pause = int(command[1])
    drain = GatewaySettings.model_fields["log_drain_s"].default if name == "gateway" else 0
    needed = pause + common(name, "0.0.0.0:1")["graceful_timeout"] + drain
    assert pod.get("terminationGracePeriodSeconds", 30) >= needed
