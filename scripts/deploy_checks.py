#!/usr/bin/env python3
# Consistency checks of the deployment files that schemas can't express; run by scripts/check-deploy.sh.
"""Subcommands (each prints its problems and exits 1 if there are any):

  compose RENDERED.yml      the output of `docker-compose config`: scalable services, mounts, redis settings
  k8s OVERLAY RENDERED.yml  a rendered overlay: probes, resources, HPAs, PDBs, references, namespace
  dashboard FILE.json       the Grafana dashboard: datasource, unique ids, every panel queries something
  dashboard-rules FILE.json print the dashboard's queries as a recording-rules file, so that
                            `promtool check rules` parses every one of them
  headers FILE...           every file starts with a comment line saying what it is for
"""
import json
import os
import re
import sys

import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
SERVICES = {
    # name: (ops port, memory request, memory limit) -- limits from the infrastructure brief
    "engine": (9101, "128Mi", "256Mi"),
    "economy": (9102, "64Mi", "128Mi"),
    "gateway": (8080, None, None),
}
REDIS_CONF = os.path.join(ROOT, "k8s/base/redis.conf")
ALERT_RULES = os.path.join(ROOT, "k8s/monitoring/alerts.yml")


def redis_conf_problems(path):
    want = {"appendonly": "yes", "appendfsync": "everysec", "maxmemory-policy": "noeviction"}
    got = {}
    with open(path) as f:
        for line in f:
            parts = line.split()
            if parts and not parts[0].startswith("#"):
                got[parts[0]] = " ".join(parts[1:])
    probs = [f"{path}: {k} must be {v} (is {got.get(k)!r})" for k, v in want.items() if got.get(k) != v]
    if "maxmemory" not in got:
        probs.append(f"{path}: maxmemory must be set")
    return probs


def check_compose(rendered):
    with open(rendered) as f:
        cfg = yaml.safe_load(f)
    probs = []
    svcs = cfg.get("services", {})
    for need in ("redis", "engine", "economy", "gateway", "prometheus", "grafana", "node-exporter"):
        if need not in svcs:
            probs.append(f"service {need} missing")
    for name in ("engine", "economy"):
        s = svcs.get(name, {})
        # --scale needs no fixed container name and no host port.
        if "container_name" in s or s.get("ports"):
            probs.append(f"{name}: container_name/ports prevent `--scale {name}=N`")
    for name in SERVICES:
        s = svcs.get(name, {})
        env = s.get("environment", {})
        if not str(env.get("REDIS_URL", "")).startswith("redis://redis:"):
            probs.append(f"{name}: REDIS_URL must point at the redis service")
        if s.get("build", {}).get("args", {}).get("BIN") != name:
            probs.append(f"{name}: build arg BIN must be {name}")
        if s.get("depends_on", {}).get("redis", {}).get("condition") != "service_healthy":
            probs.append(f"{name}: should wait for a healthy redis")
    gw = svcs.get("gateway", {})
    if not any(str(p.get("target") if isinstance(p, dict) else p).endswith("8080") for p in gw.get("ports", [])):
        probs.append("gateway: must publish port 8080")
    if "GATEWAY_TOKEN_SECRET" not in gw.get("environment", {}):
        probs.append("gateway: GATEWAY_TOKEN_SECRET not set")
    # Every bind-mounted file exists; the rules and redis.conf are the same files Kubernetes uses.
    mounts = {name: [volume_mount(v) for v in s.get("volumes", [])] for name, s in svcs.items()}
    for name, ms in mounts.items():
        for typ, src, tgt in ms:
            if typ == "bind" and name != "node-exporter" and not os.path.exists(src):
                probs.append(f"{name}: bind mount source {src} does not exist")

    def source(name, target):
        return next((os.path.realpath(src) for _, src, tgt in mounts.get(name, []) if tgt == target), None)

    if source("prometheus", "/etc/prometheus/rules/alerts.yml") != ALERT_RULES:
        probs.append("prometheus: must mount k8s/monitoring/alerts.yml at /etc/prometheus/rules/alerts.yml")
    if source("redis", "/usr/local/etc/redis/redis.conf") != REDIS_CONF:
        probs.append("redis: must mount k8s/base/redis.conf at /usr/local/etc/redis/redis.conf")
    if "/usr/local/etc/redis/redis.conf" not in (svcs.get("redis", {}).get("command") or []):
        probs.append("redis: must run with the mounted redis.conf")
    if not any(typ == "volume" and tgt == "/data" for typ, _, tgt in mounts.get("redis", [])):
        probs.append("redis: /data must be a named volume (AOF persistence)")
    probs += redis_conf_problems(REDIS_CONF)
    return probs


def volume_mount(v):
    """(type, source, target) of a compose volume entry, short or long syntax."""
    if isinstance(v, dict):
        return v.get("type"), v.get("source"), v.get("target")
    parts = v.split(":")
    src, tgt = parts[0], parts[1] if len(parts) > 1 else parts[0]
    return ("bind" if src.startswith(("/", ".", "~")) else "volume"), src, tgt


def mem_bytes(q):
    m = re.fullmatch(r"(\d+)(Mi|Gi|Ki)?", str(q))
    if not m:
        raise ValueError(q)
    return int(m.group(1)) * {"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, None: 1}[m.group(2)]


def check_k8s(overlay, rendered):
    with open(rendered) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    probs = []
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], {})[d["metadata"]["name"]] = d
    namespaces = list(by_kind.get("Namespace", {}))
    if len(namespaces) != 1:
        probs.append(f"expected exactly one Namespace, got {namespaces}")
    ns = namespaces[0] if namespaces else None
    for d in docs:
        if d["kind"] != "Namespace" and d["metadata"].get("namespace") != ns:
            probs.append(f"{d['kind']}/{d['metadata']['name']}: namespace {d['metadata'].get('namespace')!r} != {ns!r}")
    deployments = by_kind.get("Deployment", {})
    pod_labels = []
    for kind in ("Deployment", "StatefulSet"):
        for name, d in by_kind.get(kind, {}).items():
            spec = d["spec"]
            labels = spec["template"]["metadata"].get("labels", {})
            pod_labels.append(labels)
            sel = spec["selector"]["matchLabels"]
            if any(labels.get(k) != v for k, v in sel.items()):
                probs.append(f"{kind}/{name}: selector does not match its pod template")
            pod = spec["template"]["spec"]
            if pod.get("terminationGracePeriodSeconds", 30) < 5:
                probs.append(f"{kind}/{name}: terminationGracePeriodSeconds too short")
            for c in pod["containers"]:
                res = c.get("resources", {})
                if "memory" not in res.get("requests", {}) or "memory" not in res.get("limits", {}):
                    probs.append(f"{kind}/{name}/{c['name']}: memory request and limit required")
                if "cpu" not in res.get("requests", {}):
                    probs.append(f"{kind}/{name}/{c['name']}: cpu request required (HPA utilisation)")
                if not c.get("livenessProbe") or not c.get("readinessProbe"):
                    probs.append(f"{kind}/{name}/{c['name']}: liveness and readiness probes required")
                for e in c.get("env", []):
                    ref = e.get("valueFrom", {}).get("secretKeyRef") or e.get("valueFrom", {}).get("configMapKeyRef")
                    if ref and not ref.get("optional"):
                        kind_ref = "Secret" if "secretKeyRef" in e["valueFrom"] else "ConfigMap"
                        obj = by_kind.get(kind_ref, {}).get(ref["name"])
                        if obj is None:
                            if kind_ref == "Secret" and overlay == "prod":
                                continue  # created out of band in prod (docs/deploy.md)
                            probs.append(f"{kind}/{name}: {kind_ref} {ref['name']} not rendered")
                        elif ref["key"] not in (obj.get("data") or {}):
                            probs.append(f"{kind}/{name}: {kind_ref} {ref['name']} has no key {ref['key']}")
                for e in c.get("envFrom", []):
                    if "configMapRef" in e and e["configMapRef"]["name"] not in by_kind.get("ConfigMap", {}):
                        probs.append(f"{kind}/{name}: ConfigMap {e['configMapRef']['name']} not rendered")
            for v in pod.get("volumes", []):
                if "configMap" in v and v["configMap"]["name"] not in by_kind.get("ConfigMap", {}):
                    probs.append(f"{kind}/{name}: volume ConfigMap {v['configMap']['name']} not rendered")
                pvc = v.get("persistentVolumeClaim")
                if pvc and pvc["claimName"] not in by_kind.get("PersistentVolumeClaim", {}):
                    probs.append(f"{kind}/{name}: PVC {pvc['claimName']} not rendered")
    for name, (port, req, lim) in SERVICES.items():
        d = deployments.get(name)
        if not d:
            probs.append(f"Deployment/{name} missing")
            continue
        if "replicas" in d["spec"]:
            probs.append(f"Deployment/{name}: leave replicas to the HPA")
        c = d["spec"]["template"]["spec"]["containers"][0]
        ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
        if port not in ports.values():
            probs.append(f"Deployment/{name}: container port {port} missing")
        for probe, path in (("livenessProbe", "/health"), ("readinessProbe", "/ready")):
            got = c.get(probe, {}).get("httpGet", {})
            pport = ports.get(got.get("port"), got.get("port"))
            if got.get("path") != path or pport != port:
                probs.append(f"Deployment/{name}: {probe} must GET {path} on port {port}")
        res = c.get("resources", {})
        if req and res.get("requests", {}).get("memory") != req:
            probs.append(f"Deployment/{name}: memory request must be {req}")
        if lim and res.get("limits", {}).get("memory") != lim:
            probs.append(f"Deployment/{name}: memory limit must be {lim}")
        if mem_bytes(res["requests"]["memory"]) > mem_bytes(res["limits"]["memory"]):
            probs.append(f"Deployment/{name}: request above limit")
        hpa = by_kind.get("HorizontalPodAutoscaler", {}).get(name)
        if not hpa or hpa["spec"]["scaleTargetRef"]["name"] != name:
            probs.append(f"HorizontalPodAutoscaler/{name} missing or targets another workload")
        else:
            targets = {m["resource"]["name"]: m["resource"]["target"].get("averageUtilization")
                       for m in hpa["spec"]["metrics"] if m["type"] == "Resource"}
            if targets != {"cpu": 70, "memory": 80}:
                probs.append(f"HorizontalPodAutoscaler/{name}: want cpu 70% and memory 80%, got {targets}")
            lo, hi = hpa["spec"].get("minReplicas", 1), hpa["spec"]["maxReplicas"]
            if overlay == "prod" and (lo, hi) != (2, 10):
                probs.append(f"HorizontalPodAutoscaler/{name}: prod wants 2-10 replicas, got {lo}-{hi}")
        pdbs = [p for p in by_kind.get("PodDisruptionBudget", {}).values()
                if all(d["spec"]["template"]["metadata"]["labels"].get(k) == v
                       for k, v in p["spec"]["selector"]["matchLabels"].items())]
        if not pdbs:
            probs.append(f"Deployment/{name}: no PodDisruptionBudget selects it")
    for name, s in by_kind.get("Service", {}).items():
        sel = s["spec"].get("selector", {})
        if not any(all(l.get(k) == v for k, v in sel.items()) for l in pod_labels):
            probs.append(f"Service/{name}: selector {sel} matches no pod template")
    redis = by_kind.get("StatefulSet", {}).get("redis")
    if not redis or not redis["spec"].get("volumeClaimTemplates"):
        probs.append("StatefulSet/redis with a volumeClaimTemplate required")
    cm = by_kind.get("ConfigMap", {})
    with open(ALERT_RULES) as f:
        if cm.get("prometheus-rules", {}).get("data", {}).get("alerts.yml") != f.read():
            probs.append("ConfigMap/prometheus-rules must hold k8s/monitoring/alerts.yml unchanged")
    if "grafana-dashboards" not in cm:
        probs.append("ConfigMap/grafana-dashboards missing")
    return probs


def check_dashboard(path):
    with open(path) as f:
        dash = json.load(f)
    probs = []
    if not dash.get("uid") or not dash.get("title"):
        probs.append("dashboard needs uid and title")
    ids = []

    def walk(panels):
        for p in panels:
            ids.append(p.get("id"))
            if p.get("type") != "row":
                if p.get("datasource", {}).get("uid") != "prometheus":
                    probs.append(f"panel {p.get('title')!r}: datasource uid must be 'prometheus'")
                if not [t for t in p.get("targets", []) if t.get("expr")]:
                    probs.append(f"panel {p.get('title')!r}: no query")
                for t in p.get("targets", []):
                    if t.get("expr", "").count("(") != t.get("expr", "").count(")"):
                        probs.append(f"panel {p.get('title')!r}: unbalanced parentheses in {t['expr']!r}")
            walk(p.get("panels", []))

    walk(dash.get("panels", []))
    if len(ids) != len(set(ids)) or None in ids:
        probs.append("panel ids must be present and unique")
    titles = " ".join(p.get("title", "") for p in dash.get("panels", [])).lower()
    for want in ("tick time", "selection latency", "entities", "command", "lag", "memory", "websocket"):
        if want not in titles:
            probs.append(f"dashboard has no panel about {want!r}")
    return probs


def dashboard_rules(path):
    """Every panel query as a recording rule (Grafana's $__ variables replaced by 1m)."""
    with open(path) as f:
        dash = json.load(f)
    rules = []

    def walk(panels):
        for p in panels:
            for t in p.get("targets", []):
                if t.get("expr"):
                    expr = re.sub(r"\$__(rate_interval|interval|range)", "1m", t["expr"])
                    rules.append({"record": f"dashboard:panel_{p.get('id')}_{t.get('refId', 'A')}", "expr": expr})
            walk(p.get("panels", []))

    walk(dash.get("panels", []))
    return {"groups": [{"name": "dashboard-queries", "rules": rules}]}


def check_headers(paths):
    probs = []
    for p in paths:
        if p.endswith(".json"):
            continue  # JSON has no comments
        with open(p) as f:
            lines = f.read().splitlines()
        first = lines[0] if lines else ""
        if first.startswith("#!"):
            first = lines[1] if len(lines) > 1 else ""
        if not re.match(r"#\s*\S", first):
            probs.append(f"{p}: first line must be a comment saying what the file is for")
    return probs


def main(argv):
    if len(argv) == 3 and argv[1] == "compose":
        probs = check_compose(argv[2])
    elif len(argv) == 4 and argv[1] == "k8s":
        probs = check_k8s(argv[2], argv[3])
    elif len(argv) == 3 and argv[1] == "dashboard":
        probs = check_dashboard(argv[2])
    elif len(argv) == 3 and argv[1] == "dashboard-rules":
        print("# Generated from the Grafana dashboard for promtool; not kept.")
        yaml.safe_dump(dashboard_rules(argv[2]), sys.stdout, sort_keys=False, width=1000)
        return 0
    elif len(argv) >= 2 and argv[1] == "headers":
        probs = check_headers(argv[2:])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    for p in probs:
        print(f"  {p}", file=sys.stderr)
    return 1 if probs else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
