#!/usr/bin/env python3
# Renders k8s/ kustomizations without kustomize: the subset this repo uses, failing loudly on anything else.
"""A small kustomize renderer for machines without `kubectl kustomize`.

Supported (and nothing more; an unknown kustomization field is an error):
  resources           files (multi-document YAML) and directories holding a kustomization
  namespace           sets metadata.namespace on namespaced objects, renames Namespace objects
  labels              pairs; includeTemplates (pod templates, volumeClaimTemplates); includeSelectors: false only
  configMapGenerator  literals and files ("key=path" or "path"), name hash suffix off only
  secretGenerator     the same, type Opaque
  generatorOptions    disableNameSuffixHash: true only
  images              name -> newName / newTag / digest on containers and initContainers
  patches             strategic-merge patches from path or inline patch, optional target (kind, name)

Transformers run in kustomize's order: generators, patches, namespace, labels, images.

Usage:
  kustomize_lite.py build DIR               print the rendered YAML stream
  kustomize_lite.py compare DIR FILE        compare our rendering of DIR with FILE (e.g. kubectl kustomize output)
"""
import base64
import copy
import difflib
import json
import os
import sys

import yaml

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
ALLOWED_FIELDS = {
    "apiVersion", "kind", "resources", "namespace", "labels", "configMapGenerator",
    "secretGenerator", "generatorOptions", "images", "patches",
}
CLUSTER_SCOPED = {
    "Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "PersistentVolume",
    "StorageClass", "PriorityClass", "IngressClass", "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration", "APIService", "RuntimeClass", "CSIDriver", "VolumeAttachment",
}
WORKLOADS_WITH_TEMPLATE = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "ReplicationController"}
# Strategic-merge keys of the list fields our patches touch; other lists are replaced whole.
MERGE_KEYS = {
    "containers": "name", "initContainers": "name", "env": "name", "volumes": "name",
    "volumeMounts": "mountPath", "imagePullSecrets": "name",
}


class KustomizeError(Exception):
    pass


def load_yaml_docs(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def find_kustomization(directory):
    for name in KUSTOMIZATION_FILES:
        p = os.path.join(directory, name)
        if os.path.isfile(p):
            return p
    raise KustomizeError(f"{directory}: no kustomization file")


def split_kv(item, where):
    if "=" not in item:
        raise KustomizeError(f"{where}: expected KEY=VALUE, got {item!r}")
    k, v = item.split("=", 1)
    return k, v


def generate(gen, base_dir, kind, options):
    if not options.get("disableNameSuffixHash"):
        raise KustomizeError("generators need generatorOptions.disableNameSuffixHash: true (hashes unsupported)")
    unknown = set(gen) - {"name", "literals", "files", "behavior"}
    if unknown or gen.get("behavior", "create") != "create":
        raise KustomizeError(f"{kind} generator {gen.get('name')}: unsupported fields {sorted(unknown)} or behavior")
    data = {}
    for lit in gen.get("literals", []):
        k, v = split_kv(lit, gen["name"])
        data[k] = v
    for f in gen.get("files", []):
        if "=" in f:
            k, rel = split_kv(f, gen["name"])
        else:
            k, rel = os.path.basename(f), f
        path = os.path.normpath(os.path.join(base_dir, rel))
        if not (path + os.sep).startswith(os.path.abspath(base_dir) + os.sep):
            raise KustomizeError(f"{path}: outside the kustomization root (kustomize's load restrictor)")
        with open(path) as fh:
            data[k] = fh.read()
    obj = {"apiVersion": "v1", "kind": kind, "metadata": {"name": gen["name"]}}
    if kind == "Secret":
        obj["type"] = "Opaque"
        obj["data"] = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    else:
        obj["data"] = data
    return obj


def smp(base, patch):
    """Strategic merge of patch into base (maps merge, null deletes, keyed lists merge)."""
    if not isinstance(base, dict) or not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(base)
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        elif k in MERGE_KEYS and isinstance(v, list) and isinstance(out.get(k), list):
            key = MERGE_KEYS[k]
            merged = list(out[k])
            for item in v:
                idx = next((i for i, b in enumerate(merged) if b.get(key) == item.get(key)), None)
                if idx is None:
                    merged.append(copy.deepcopy(item))
                else:
                    merged[idx] = smp(merged[idx], item)
            out[k] = merged
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = smp(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def apply_patches(resources, patches, base_dir):
    for p in patches:
        unknown = set(p) - {"path", "patch", "target"}
        if unknown:
            raise KustomizeError(f"patch fields {sorted(unknown)} unsupported")
        if "path" in p:
            docs = load_yaml_docs(os.path.join(base_dir, p["path"]))
        else:
            docs = [d for d in yaml.safe_load_all(p["patch"]) if d is not None]
        if len(docs) != 1:
            raise KustomizeError(f"patch {p}: exactly one document expected")
        doc = docs[0]
        target = p.get("target")
        if target:
            unknown = set(target) - {"kind", "name"}
            if unknown:
                raise KustomizeError(f"patch target fields {sorted(unknown)} unsupported")

            def matches(r):
                return r.get("kind") == target.get("kind", r.get("kind")) and \
                    r["metadata"]["name"] == target.get("name", r["metadata"]["name"])
        else:
            def matches(r):
                return r.get("kind") == doc.get("kind") and r["metadata"]["name"] == doc["metadata"]["name"]
        body = {k: v for k, v in doc.items() if k not in ("apiVersion", "kind", "metadata")}
        meta_patch = {k: v for k, v in doc.get("metadata", {}).items() if k in ("labels", "annotations")}
        hit = False
        for i, r in enumerate(resources):
            if matches(r):
                hit = True
                merged = smp(r, body)
                if meta_patch:
                    merged["metadata"] = smp(merged["metadata"], meta_patch)
                resources[i] = merged
        if not hit:
            raise KustomizeError(f"patch {p.get('path', '<inline>')}: no resource matches")


def set_namespace(resources, ns):
    for r in resources:
        if r["kind"] == "Namespace":
            r["metadata"]["name"] = ns
        elif r["kind"] not in CLUSTER_SCOPED:
            r["metadata"]["namespace"] = ns


def add_labels(resources, entries):
    for e in entries:
        unknown = set(e) - {"pairs", "includeSelectors", "includeTemplates"}
        if unknown or e.get("includeSelectors"):
            raise KustomizeError(f"labels entry {e}: only pairs/includeTemplates (no selectors) supported")
        pairs = e.get("pairs", {})
        for r in resources:
            r["metadata"].setdefault("labels", {}).update(pairs)
            if e.get("includeTemplates") and r["kind"] in WORKLOADS_WITH_TEMPLATE:
                tmpl = r.setdefault("spec", {}).setdefault("template", {})
                tmpl.setdefault("metadata", {}).setdefault("labels", {}).update(pairs)
                for vct in r["spec"].get("volumeClaimTemplates", []):
                    vct.setdefault("metadata", {}).setdefault("labels", {}).update(pairs)


def pod_specs(r):
    spec = r.get("spec", {})
    if r["kind"] in WORKLOADS_WITH_TEMPLATE:
        yield spec.get("template", {}).get("spec", {})
    elif r["kind"] == "CronJob":
        yield spec.get("jobTemplate", {}).get("spec", {}).get("template", {}).get("spec", {})
    elif r["kind"] == "Pod":
        yield spec


def set_images(resources, images):
    for img in images:
        unknown = set(img) - {"name", "newName", "newTag", "digest"}
        if unknown:
            raise KustomizeError(f"images entry {img}: unsupported fields {sorted(unknown)}")
    for r in resources:
        for ps in pod_specs(r):
            for c in ps.get("containers", []) + ps.get("initContainers", []):
                ref = c.get("image", "")
                name = ref.split("@", 1)[0]
                last = name.rsplit("/", 1)[-1]
                if ":" in last:
                    name = name[: len(name) - len(last)] + last.split(":", 1)[0]
                for img in images:
                    if img["name"] != name:
                        continue
                    new = img.get("newName", name)
                    if "digest" in img:
                        c["image"] = f"{new}@{img['digest']}"
                    else:
                        tag = img.get("newTag") or (ref[len(name) + 1:] if ref.startswith(name + ":") else "")
                        c["image"] = f"{new}:{tag}" if tag else new


def build(directory):
    directory = os.path.abspath(directory)
    kfile = find_kustomization(directory)
    with open(kfile) as f:
        k = yaml.safe_load(f) or {}
    unknown = set(k) - ALLOWED_FIELDS
    if unknown:
        raise KustomizeError(f"{kfile}: unsupported fields {sorted(unknown)} (extend scripts/kustomize_lite.py)")
    resources = []
    for res in k.get("resources", []):
        path = os.path.join(directory, res)
        if os.path.isdir(path):
            resources += build(path)
        else:
            resources += load_yaml_docs(path)
    options = k.get("generatorOptions", {})
    if set(options) - {"disableNameSuffixHash"}:
        raise KustomizeError(f"{kfile}: generatorOptions {sorted(options)} unsupported")
    for g in k.get("configMapGenerator", []):
        resources.append(generate(g, directory, "ConfigMap", options))
    for g in k.get("secretGenerator", []):
        resources.append(generate(g, directory, "Secret", options))
    apply_patches(resources, k.get("patches", []), directory)
    if "namespace" in k:
        set_namespace(resources, k["namespace"])
    add_labels(resources, k.get("labels", []))
    set_images(resources, k.get("images", []))
    seen = set()
    for r in resources:
        ident = (r.get("apiVersion"), r["kind"], r["metadata"].get("namespace"), r["metadata"]["name"])
        if ident in seen:
            raise KustomizeError(f"{kfile}: duplicate resource {ident}")
        seen.add(ident)
    return resources


def normalize(obj):
    """Order-insensitive form: map keys sorted, lists of named maps sorted by name."""
    if isinstance(obj, dict):
        return {k: normalize(v) for k, v in sorted(obj.items())}
    if isinstance(obj, list):
        items = [normalize(v) for v in obj]
        if items and all(isinstance(i, dict) for i in items):
            for key in ("name", "mountPath"):
                if all(key in i for i in items):
                    return sorted(items, key=lambda i: json.dumps(i[key]))
        return items
    return obj


def ident(r):
    return f"{r['kind']}/{r['metadata'].get('namespace', '')}/{r['metadata']['name']}"


def compare(directory, rendered_file):
    ours = {ident(r): normalize(r) for r in build(directory)}
    theirs = {ident(r): normalize(r) for r in load_yaml_docs(rendered_file)}
    problems = []
    for key in sorted(set(ours) | set(theirs)):
        if key not in ours:
            problems.append(f"only in {rendered_file}: {key}")
        elif key not in theirs:
            problems.append(f"only in kustomize_lite: {key}")
        elif ours[key] != theirs[key]:
            a = yaml.safe_dump(ours[key], sort_keys=True).splitlines()
            b = yaml.safe_dump(theirs[key], sort_keys=True).splitlines()
            diff = "\n".join(difflib.unified_diff(a, b, "kustomize_lite", rendered_file, lineterm="", n=2))
            problems.append(f"differs: {key}\n{diff}")
    return problems


def main(argv):
    if len(argv) == 3 and argv[1] == "build":
        yaml.safe_dump_all(build(argv[2]), sys.stdout, sort_keys=True, default_flow_style=False)
        return 0
    if len(argv) == 4 and argv[1] == "compare":
        problems = compare(argv[2], argv[3])
        for p in problems:
            print(p, file=sys.stderr)
        return 1 if problems else 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except KustomizeError as e:
        print(f"kustomize_lite: {e}", file=sys.stderr)
        sys.exit(1)
