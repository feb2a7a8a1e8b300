"""Validators for rendered objects: Kubernetes' own schemas (kubernetes-validate) for core
objects; KubeRay v1.5.2's real CRDs (`../shared/k8s/crds`, the files KubeRay installs)
for RayService and RayCluster, their `openAPIV3Schema` checked with jsonschema as strictly
as `kubectl apply --validate=strict` (an unknown field is an error). Where ../shared is
absent the CRD checks skip, saying so."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CRDS = ROOT.parent / "shared" / "k8s" / "crds"
CRD_FILES = {"RayService": "ray.io_rayservices.yaml", "RayCluster": "ray.io_rayclusters.yaml"}
# The oldest Kubernetes that current KubeRay releases support is well below this; the
# rendered objects use nothing newer than 1.25.
K8S_VERSION = "1.33"


def validate_core(obj: dict[str, Any]) -> None:
    """Raise kubernetes_validate.ValidationError unless `obj` is a valid core object
    (strict: unknown fields are errors)."""
    import kubernetes_validate

    kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


def _strict(node: Any) -> Any:
    """An openAPIV3Schema node as JSON Schema: unknown fields refused where Kubernetes
    would prune them (no x-kubernetes-preserve-unknown-fields), int-or-string and
    nullable spelled out."""
    if isinstance(node, list):
        return [_strict(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _strict(v) for k, v in node.items() if not k.startswith("x-kubernetes-")
           and k != "nullable"}
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    if ("properties" in node and "additionalProperties" not in node
            and not node.get("x-kubernetes-preserve-unknown-fields")):
        out["additionalProperties"] = False
    return out


@functools.cache
def crd_schema(kind: str) -> dict[str, Any]:
    """The v1 openAPIV3Schema of KubeRay's CRD for `kind`, as strict JSON Schema."""
    import pytest

    path = CRDS / CRD_FILES[kind]
    if not path.exists():
        pytest.skip(f"KubeRay's CRDs are not at {CRDS} (../shared/k8s/crds): the {kind} "
                    "schema check needs them")
    crd = yaml.safe_load(path.read_text())
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")
    schema = _strict(version["schema"]["openAPIV3Schema"])
    # apiVersion, kind and metadata are the API server's: checked by it, not the CRD
    schema["properties"]["metadata"] = {"type": "object"}
    return schema


def crd_errors(obj: dict[str, Any]) -> list[str]:
    import jsonschema

    validator = jsonschema.Draft202012Validator(crd_schema(obj["kind"]))
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator.iter_errors(obj)]


def rayservice_errors(obj: dict[str, Any]) -> list[str]:
    assert obj["kind"] == "RayService"
    return crd_errors(obj)
