"""deploy/: the manifests parse, every resource is listed, probes and metrics are wired.

(`kubectl kustomize` is not installable here; this checks what it can without it.)
"""

from __future__ import annotations

import json
import re
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


def test_grafana_dashboard_reads_metrics_we_serve() -> None:
    board = json.loads((DEPLOY / "grafana" / "tracker.json").read_text())
    source = (ROOT / "tracker" / "prometheus.py").read_text()
    served = set(re.findall(r'"(tracker_[a-z_]+)"', source))
    served |= {f"tracker_worker_{n}_total" for n in WORKER_COUNTERS}
    for panel in board["panels"]:
        for target in panel["targets"]:
            for name in re.findall(r"tracker_[a-z_]+", target["expr"]):
                assert name in served, name
