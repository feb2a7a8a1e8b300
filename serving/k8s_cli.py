"""Arguments and command of `lorag k8s render` (logic in serving/k8s.py)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from serving.config import ConfigError

__all__ = ["KUSTOMIZATION_NOTE", "write_kustomize_base", "read_env_file",
           "add_render_arguments", "settings_from_args", "run_render"]

KUSTOMIZATION_NOTE = """\
# A kustomize base rendered by `lorag k8s render`; overlay it rather than editing
# (image tag, namespace, GPU pool, storage class): kubectl apply -k <overlay>.
"""


def write_kustomize_base(docs: list[dict[str, Any]], out: Path) -> list[Path]:
    """`out/lorag.yaml` (every object) and `out/kustomization.yaml` naming it."""
    from serving.k8s import dump_documents, dump_yaml

    out.mkdir(parents=True, exist_ok=True)
    manifest = out / "lorag.yaml"
    manifest.write_text(dump_documents(docs))
    kustomization = out / "kustomization.yaml"
    kustomization.write_text(KUSTOMIZATION_NOTE + dump_yaml(
        {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
         "resources": [manifest.name]}))
    return [manifest, kustomization]


def read_env_file(path: str | Path) -> dict[str, str]:
    """KEY=VALUE lines (blank lines and # comments skipped), as `kubectl --from-env-file`."""
    data = {}
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{path}:{n}: expected KEY=VALUE")
        data[key.strip()] = value
    return data


def _pairs(values: list[str], flag: str) -> dict[str, str]:
    out = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not sep or not key:
            raise ConfigError(f"{flag}: expected KEY=VALUE, got {value!r}")
        out[key] = val
    return out


def _toleration(value: str) -> dict[str, str]:
    """KEY[=VALUE][:EFFECT], as `kubectl taint` writes a taint."""
    spec, _, effect = value.partition(":")
    key, sep, val = spec.partition("=")
    tol = {"key": key, "operator": "Equal" if sep else "Exists"}
    if sep:
        tol["value"] = val
    if effect:
        tol["effect"] = effect
    return tol


def add_render_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="lorag YAML config (default: configs/default.yaml)")
    p.add_argument("--settings", help="YAML of cluster settings (serving/k8s.py KubeSettings; "
                   "example: deploy/k8s/settings.example.yaml)")
    p.add_argument("--image", help="container image (deploy/Dockerfile.gpu)")
    p.add_argument("--namespace", help="namespace of every object")
    p.add_argument("--name", help="RayService name (prefix of the other objects)")
    p.add_argument("--gpus-per-pod", type=int, help="GPUs requested by one GPU worker pod")
    p.add_argument("--gpu-node-selector", action="append", default=[], metavar="KEY=VALUE",
                   help="nodeSelector of the GPU pods (repeatable)")
    p.add_argument("--gpu-toleration", action="append", default=None,
                   metavar="KEY[=VALUE][:EFFECT]",
                   help="toleration of the GPU pods (repeatable; replaces the default "
                   "nvidia.com/gpu:NoSchedule)")
    p.add_argument("--storage-class", help="storageClassName of the data volume")
    p.add_argument("--path-map", action="append", default=[], metavar="LOCAL=POD",
                   help="a local path prefix outside the repository and where pods see it")
    p.add_argument("--secret-env-file", help="KEY=VALUE file put into the Secret")
    p.add_argument("--out", help="write a kustomize base (lorag.yaml + kustomization.yaml) "
                   "here instead of printing the manifest")


def settings_from_args(args: argparse.Namespace):
    from serving.k8s import load_settings

    settings = load_settings(args.settings)
    top = {k: v for k, v in {"image": args.image, "namespace": args.namespace,
                             "name": args.name}.items() if v}
    gpu: dict = {}
    if args.gpus_per_pod:
        gpu["gpus_per_pod"] = args.gpus_per_pod
    if args.gpu_node_selector:
        gpu["node_selector"] = {**settings.gpu_workers.node_selector,
                                **_pairs(args.gpu_node_selector, "--gpu-node-selector")}
    if args.gpu_toleration is not None:
        gpu["tolerations"] = [_toleration(t) for t in args.gpu_toleration]
    if args.storage_class:
        top["storage"] = settings.storage.model_copy(update={"storage_class": args.storage_class})
    if args.path_map:
        top["path_map"] = {**settings.path_map, **_pairs(args.path_map, "--path-map")}
    if args.secret_env_file:
        top["secret_data"] = read_env_file(args.secret_env_file)
    data = settings.model_dump()
    data.update({k: (v.model_dump() if hasattr(v, "model_dump") else v) for k, v in top.items()})
    data["gpu_workers"].update(gpu)
    return type(settings).model_validate(data)


def run_render(args: argparse.Namespace) -> int:
    from serving.config import DEFAULT_CONFIG_PATH, load_config
    from serving.k8s import dump_documents, render

    path = Path(args.config) if args.config else DEFAULT_CONFIG_PATH
    config, settings = load_config(path), settings_from_args(args)
    docs = render(config, settings, source=path.name)
    auth = config.server.auth
    if not (auth.keys or auth.keys_file or settings.secret_data.get("LORAG_API_KEYS")):
        print("lorag k8s render: the pods require API keys and this config names none: put "
              "LORAG_API_KEYS in the Secret (--secret-env-file; `lorag keys create` prints "
              "an entry) before applying, or the application will not start.",
              file=sys.stderr)
    if args.out:
        for written in write_kustomize_base(docs, Path(args.out)):
            print(f"wrote {written}", file=sys.stderr)
    else:
        sys.stdout.write(dump_documents(docs))
    return 0
