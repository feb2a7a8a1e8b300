"""Every render, applied to a real Kubernetes API server: `kubectl apply --dry-run=server
--validate=strict` against a kube-apiserver (etcd on loopback) with KubeRay v1.5.2's CRDs
installed, started by `../shared/bin/k8s-apiserver`. Skipped, saying why, where that
script or kubectl is absent.

Renders: the default config, the default config with deploy/k8s/settings.example.yaml,
the CPU settings (deploy/k8s/cpu.yaml), the two-tenant example with its key file, and
the multi-node retrieval option (configs/multi-node.yaml: a retrieval writer on the
head, retriever copies on every pod's emptyDir).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from serving.config import load_config, parse_config
from serving.k8s import dump_documents, load_settings, render
from tests.k8s.schemas import ROOT

APISERVER = ROOT.parent / "shared" / "bin" / "k8s-apiserver"


@pytest.fixture(scope="module")
def kubeconfig(tmp_path_factory):
    if not APISERVER.exists():
        pytest.skip(f"{APISERVER} is absent: no real API server to dry-run the renders on")
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed: no server-side dry run")
    work = tmp_path_factory.mktemp("apiserver")
    up = subprocess.run([str(APISERVER), "up", str(work)], capture_output=True, text=True,
                        timeout=300)
    if up.returncode != 0:
        pytest.fail(f"k8s-apiserver up failed ({up.returncode}): {up.stderr[-2000:]}")
    line = next(x for x in up.stdout.splitlines() if x.startswith("KUBECONFIG="))
    yield line.split("=", 1)[1]
    subprocess.run([str(APISERVER), "down", str(work)], capture_output=True, timeout=120)


def dry_run(kubeconfig: str, docs: list[dict], tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "KUBECONFIG": kubeconfig}
    for namespace in {d["metadata"].get("namespace") for d in docs} - {None, "default"}:
        # a namespace is the cluster's, not the render's: made for real, once
        subprocess.run(["kubectl", "create", "namespace", namespace], capture_output=True,
                       timeout=60, env=env)
    path = tmp_path / "rendered.yaml"
    path.write_text(dump_documents(docs))
    return subprocess.run(
        ["kubectl", "apply", "--dry-run=server", "--validate=strict", "-f", str(path)],
        capture_output=True, text=True, timeout=120, env=env)


def two_tenants(tmp_path: Path):
    from serving.cli import build_parser

    keys = tmp_path / "keys.yaml"
    args = build_parser().parse_args(["keys", "create", "--file", str(keys), "--name", "ops",
                                      "--scope", "admin"])
    args.func(args)
    path = ROOT / "configs" / "two-tenants.yaml"
    data = yaml.safe_load(path.read_text())
    data["server"]["auth"]["keys_file"] = str(keys)
    return parse_config(data, "two-tenants", base_dir=path.parent)


RENDERS = {
    "default": lambda tmp: (load_config(), load_settings(None)),
    "settings.example": lambda tmp: (
        load_config(), load_settings(ROOT / "deploy" / "k8s" / "settings.example.yaml")),
    "cpu": lambda tmp: (load_config(), load_settings(ROOT / "deploy" / "k8s" / "cpu.yaml")),
    "two-tenants": lambda tmp: (two_tenants(tmp), load_settings(None)),
    "multi-node": lambda tmp: (load_config(ROOT / "configs" / "multi-node.yaml"),
                               load_settings(ROOT / "deploy" / "k8s" / "settings.example.yaml")),
}


@pytest.mark.parametrize("name", sorted(RENDERS))
def test_render_passes_a_strict_server_side_dry_run(kubeconfig, tmp_path, name):
    config, settings = RENDERS[name](tmp_path)
    docs = render(config, settings)
    result = dry_run(kubeconfig, docs, tmp_path)
    assert result.returncode == 0, f"{name}: {result.stderr}"
    created = [x for x in result.stdout.splitlines() if x.endswith("(server dry run)")]
    assert len(created) == len(docs), result.stdout


def test_the_dry_run_refuses_what_kuberay_would_not_take(kubeconfig, tmp_path):
    """The check can fail: an unknown field and a missing required one are refused."""
    config, settings = RENDERS["default"](tmp_path)
    docs = render(config, settings)
    service = next(d for d in docs if d["kind"] == "RayService")
    service["spec"]["rayClusterConfig"]["workerGroupSpec"] = []          # a typo
    result = dry_run(kubeconfig, docs, tmp_path)
    assert result.returncode != 0 and "workerGroupSpec" in result.stderr, result.stderr
    docs = render(config, settings)
    service = next(d for d in docs if d["kind"] == "RayService")
    service["spec"]["upgradeStrategy"] = {"type": "NewClusterWithIncrementalUpgrade",
                                          "clusterUpgradeOptions": {"maxSurgePercent": 50}}
    result = dry_run(kubeconfig, docs, tmp_path)
    assert result.returncode != 0 and "gatewayClassName" in result.stderr, result.stderr
