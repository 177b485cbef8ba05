"""The Kubernetes manifests: valid against the Kubernetes 1.37 schemas (offline, strict) and
following our rules: probes, resources, non-root, pinned images, PDBs for what serves."""

from __future__ import annotations

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
