"""Validators for rendered objects: Kubernetes' own schemas (kubernetes-validate) for core
objects, KubeRay's RayService schema (deploy/crds) with the Kubernetes types it embeds."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
RAYSERVICE_SCHEMA = ROOT / "deploy" / "crds" / "rayservice-v1.schema.yaml"
# The oldest Kubernetes that current KubeRay releases support is well below this; the
# rendered objects use nothing newer than 1.25.
K8S_VERSION = "1.33"


def validate_core(obj: dict[str, Any]) -> None:
    """Raise kubernetes_validate.ValidationError unless `obj` is a valid core object
    (strict: unknown fields are errors)."""
    import kubernetes_validate

    kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


@functools.cache
def _k8s_definitions() -> dict[str, Any]:
    import kubernetes_validate

    root = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
    folder = next(p for p in sorted(root.iterdir())
                  if p.name.startswith(f"v{K8S_VERSION}.") and p.name.endswith("-strict"))
    # -strict: additionalProperties false on every Kubernetes type, as kubectl's strict
    # field validation (the default since 1.27) rejects unknown fields.
    return json.loads((folder / "_definitions.json").read_text())["$defs"]


@functools.cache
def rayservice_schema() -> dict[str, Any]:
    schema = yaml.safe_load(RAYSERVICE_SCHEMA.read_text())
    schema["$defs"] = {**_k8s_definitions(), **schema["$defs"]}
    return schema


def rayservice_errors(obj: dict[str, Any]) -> list[str]:
    import jsonschema

    validator = jsonschema.Draft202012Validator(rayservice_schema())
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator.iter_errors(obj)]
