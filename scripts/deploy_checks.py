#!/usr/bin/env python3
# Consistency checks of the deployment files that schemas can't express; run by scripts/check-deploy.sh.
"""Subcommands (each prints its problems and exits 1 if there are any):

  compose RENDERED.yml      the output of `docker-compose config`: scalable services, mounts, redis settings and
                            users, the gateway's ops port, Alertmanager and the Redis exporter
  compose-cluster RENDERED.yml  `docker-compose --profile cluster config`: six Redis Cluster nodes, the create job
                            and the services pointed at the nodes
  k8s OVERLAY RENDERED.yml  a rendered overlay: probes, resources, HPAs, PDBs, references, namespace, Redis users
                            and Secrets, NetworkPolicies, ops ports, prod's image registry
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
    # name: (probe port, ops port, memory request, memory limit) -- limits from the infrastructure brief.
    # The gateway's probes use its player port (the Ingress checks it too); its /metrics is on the ops port only.
    "engine": (9101, 9101, "128Mi", "256Mi"),
    "economy": (9102, 9102, "64Mi", "128Mi"),
    "gateway": (8080, 9103, None, None),
}
REDIS_CONF = os.path.join(ROOT, "k8s/base/redis.conf")
REDIS_ACL = os.path.join(ROOT, "k8s/base/redis-users.acl")
REDIS_FILES = ("redis.conf", "redis-users.acl", "redis-start.sh", "redis-ping.sh")
ALERT_RULES = os.path.join(ROOT, "k8s/monitoring/alerts.yml")
ALERTMANAGER = os.path.join(ROOT, "k8s/monitoring/alertmanager.yml")
# The Redis ACL users, each with a password key `<user>-password` in the redis-users Secret.
REDIS_USERS = ("admin", "engine", "economy", "gateway", "replay", "exporter")
# Pods allowed to reach Redis; everything else is refused by the NetworkPolicies.
REDIS_CLIENTS = {"engine", "economy", "gateway", "redis-exporter", "replay-tool"}


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


def redis_acl_problems():
    """The ACL template: the default user off, one user per service, none of them with every key or command."""
    probs = []
    users = {}
    with open(REDIS_ACL) as f:
        for line in f:
            parts = line.split()
            if parts and parts[0] == "user":
                users[parts[1]] = parts[2:]
    if set(users) != {"default", *REDIS_USERS}:
        probs.append(f"{REDIS_ACL}: users must be default + {REDIS_USERS}, are {sorted(users)}")
    if "off" not in users.get("default", []) or "on" in users.get("default", []):
        probs.append(f"{REDIS_ACL}: the default user must be off")
    for user, rules in users.items():
        if user in ("default", "admin"):
            continue
        if "-@all" not in rules:
            probs.append(f"{REDIS_ACL}: {user} must start from -@all")
        if any(r in ("+@all", "allcommands", "~*", "allkeys", "&*", "allchannels") for r in rules):
            probs.append(f"{REDIS_ACL}: {user} must not have every command, key or channel")
        if f">${{REDIS_{user.upper()}_PASSWORD}}" not in rules:
            probs.append(f"{REDIS_ACL}: {user} must take its password from REDIS_{user.upper()}_PASSWORD")
    return probs


def check_compose(rendered):
    with open(rendered) as f:
        cfg = yaml.safe_load(f)
    probs = []
    svcs = cfg.get("services", {})
    for need in ("redis", "engine", "economy", "gateway", "prometheus", "alertmanager", "grafana", "node-exporter",
                 "redis-exporter"):
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
        if not re.fullmatch(rf"redis://{name}:[^@]+@redis:6379", str(env.get("REDIS_URL", ""))):
            probs.append(f"{name}: REDIS_URL must log in to the redis service as the {name} user")
        if s.get("build", {}).get("args", {}).get("BIN") != name:
            probs.append(f"{name}: build arg BIN must be {name}")
        if s.get("depends_on", {}).get("redis", {}).get("condition") != "service_healthy":
            probs.append(f"{name}: should wait for a healthy redis")
    gw = svcs.get("gateway", {})
    if not any(str(p.get("target") if isinstance(p, dict) else p).endswith("8080") for p in gw.get("ports", [])):
        probs.append("gateway: must publish port 8080")
    if "GATEWAY_TOKEN_SECRET" not in gw.get("environment", {}):
        probs.append("gateway: GATEWAY_TOKEN_SECRET not set")
    if "9103" not in [str(p) for p in gw.get("expose", [])]:
        probs.append("gateway: the ops port 9103 must be exposed to Prometheus")
    if any(str(p.get("target") if isinstance(p, dict) else p).endswith("9103") for p in gw.get("ports", [])):
        probs.append("gateway: the ops port 9103 must not be published")
    redis = svcs.get("redis", {})
    renv = redis.get("environment", {})
    for user in REDIS_USERS:
        if not renv.get(f"REDIS_{user.upper()}_PASSWORD"):
            probs.append(f"redis: REDIS_{user.upper()}_PASSWORD not passed")
    if "/usr/local/etc/redis/redis-start.sh" not in (redis.get("command") or []):
        probs.append("redis: must start through redis-start.sh (renders the ACL users)")
    if "redis-ping.sh" not in " ".join(redis.get("healthcheck", {}).get("test", [])):
        probs.append("redis: the healthcheck must be redis-ping.sh (PONG, not any reply)")
    rex = svcs.get("redis-exporter", {})
    if rex.get("environment", {}).get("REDIS_USER") != "exporter" or not rex.get("environment", {}).get("REDIS_PASSWORD"):
        probs.append("redis-exporter: must log in as the exporter user")
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
    for f in REDIS_FILES:
        if source("redis", f"/usr/local/etc/redis/{f}") != os.path.join(ROOT, "k8s/base", f):
            probs.append(f"redis: must mount k8s/base/{f} at /usr/local/etc/redis/{f}")
    if source("alertmanager", "/etc/alertmanager/alertmanager.yml") != ALERTMANAGER:
        probs.append("alertmanager: must mount k8s/monitoring/alertmanager.yml")
    if not any(typ == "volume" and tgt == "/data" for typ, _, tgt in mounts.get("redis", [])):
        probs.append("redis: /data must be a named volume (AOF persistence)")
    probs += redis_conf_problems(REDIS_CONF)
    probs += redis_acl_problems()
    return probs


def check_compose_cluster(rendered):
    """The `cluster` profile: six Redis Cluster nodes like `redis` (same files, ACL, probe, own volume) with
    REDIS_CLUSTER=yes, a create job after all of them, and the services pointed at the nodes."""
    with open(rendered) as f:
        cfg = yaml.safe_load(f)
    probs = []
    svcs = cfg.get("services", {})
    nodes = [f"redis-node-{n}" for n in range(1, 7)]
    for name in nodes:
        s = svcs.get(name)
        if not s:
            probs.append(f"{name} missing")
            continue
        if s.get("profiles") != ["cluster"]:
            probs.append(f"{name}: must be in the cluster profile only")
        env = s.get("environment", {})
        if env.get("REDIS_CLUSTER") != "yes":
            probs.append(f"{name}: REDIS_CLUSTER must be yes")
        for user in REDIS_USERS:
            if not env.get(f"REDIS_{user.upper()}_PASSWORD"):
                probs.append(f"{name}: REDIS_{user.upper()}_PASSWORD not passed")
        if "/usr/local/etc/redis/redis-start.sh" not in (s.get("command") or []):
            probs.append(f"{name}: must start through redis-start.sh")
        if "redis-ping.sh" not in " ".join(s.get("healthcheck", {}).get("test", [])):
            probs.append(f"{name}: the healthcheck must be redis-ping.sh")
        mounts = [volume_mount(v) for v in s.get("volumes", [])]
        for fname in REDIS_FILES:
            src = next((os.path.realpath(src) for _, src, tgt in mounts if tgt == f"/usr/local/etc/redis/{fname}"), None)
            if src != os.path.join(ROOT, "k8s/base", fname):
                probs.append(f"{name}: must mount k8s/base/{fname}")
        if not any(typ == "volume" and tgt == "/data" for typ, _, tgt in mounts):
            probs.append(f"{name}: /data must be a named volume (nodes.conf, AOF)")
    job = svcs.get("redis-cluster-create", {})
    deps = job.get("depends_on", {})
    if any(deps.get(n, {}).get("condition") != "service_healthy" for n in nodes):
        probs.append("redis-cluster-create: must wait for every node to be healthy")
    if job.get("environment", {}).get("REDIS_CLUSTER_NODES", "").split() != [f"{n}:6379" for n in nodes]:
        probs.append("redis-cluster-create: REDIS_CLUSTER_NODES must list the six nodes")
    script = os.path.join(ROOT, "k8s/overlays/cluster/redis-cluster-create.sh")
    if not any(os.path.realpath(src or "") == script for _, src, _ in map(volume_mount, job.get("volumes", []))):
        probs.append("redis-cluster-create: must mount k8s/overlays/cluster/redis-cluster-create.sh")
    for name in SERVICES:
        url = str(svcs.get(name, {}).get("environment", {}).get("REDIS_URL", ""))
        if not re.fullmatch(rf"redis\+cluster://{name}:[^@]+@redis-node-\d:6379(,redis-node-\d:6379)*", url):
            probs.append(f"{name}: with the cluster profile REDIS_URL must name the nodes, as the {name} user (is {url})")
    return probs


def k8s_cluster_problems(by_kind):
    probs = []
    sts = by_kind.get("StatefulSet", {}).get("redis-cluster")
    if not sts or sts["spec"].get("replicas") != 6 or not sts["spec"].get("volumeClaimTemplates"):
        probs.append("StatefulSet/redis-cluster with 6 replicas and a volumeClaimTemplate required")
    else:
        c = sts["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e for e in c.get("env", [])}
        if env.get("REDIS_CLUSTER", {}).get("value") != "yes":
            probs.append("StatefulSet/redis-cluster: REDIS_CLUSTER must be yes")
        if (c.get("command") or [None, None])[:2] != ["sh", "/etc/redis/redis-start.sh"]:
            probs.append("StatefulSet/redis-cluster: must start through redis-start.sh")
    job = by_kind.get("Job", {}).get("redis-cluster-create")
    if not job:
        probs.append("Job/redis-cluster-create missing")
    script = os.path.join(ROOT, "k8s/overlays/cluster/redis-cluster-create.sh")
    with open(script) as fh:
        if by_kind.get("ConfigMap", {}).get("redis-cluster-create", {}).get("data", {}).get(
                "redis-cluster-create.sh") != fh.read():
            probs.append("ConfigMap/redis-cluster-create must hold k8s/overlays/cluster/redis-cluster-create.sh")
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
    for name, (port, ops_port, req, lim) in SERVICES.items():
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
        if ports.get("ops") != ops_port:
            probs.append(f"Deployment/{name}: container port ops must be {ops_port}")
        env = {e["name"]: e for e in c.get("env", [])}
        secret = env.get("REDIS_PASSWORD", {}).get("valueFrom", {}).get("secretKeyRef", {})
        if (secret.get("name"), secret.get("key")) != ("redis-users", f"{name}-password"):
            probs.append(f"Deployment/{name}: REDIS_PASSWORD must come from Secret redis-users key {name}-password")
        want_url = (rf"redis\+cluster://{name}:\$\(REDIS_PASSWORD\)@redis-cluster-\d\.redis-cluster:6379"
                    rf"(,redis-cluster-\d\.redis-cluster:6379)*" if overlay == "cluster"
                    else re.escape(f"redis://{name}:$(REDIS_PASSWORD)@redis:6379"))
        if not re.fullmatch(want_url, str(env.get("REDIS_URL", {}).get("value"))):
            probs.append(f"Deployment/{name}: REDIS_URL must log in as the {name} Redis user"
                         + (" on the redis-cluster nodes" if overlay == "cluster" else ""))
        order = list(env)
        if "REDIS_URL" in env and "REDIS_PASSWORD" in env and order.index("REDIS_PASSWORD") > order.index("REDIS_URL"):
            probs.append(f"Deployment/{name}: REDIS_PASSWORD must come before REDIS_URL (for $(REDIS_PASSWORD))")
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
    cm = by_kind.get("ConfigMap", {})
    redis = by_kind.get("StatefulSet", {}).get("redis")
    if not redis or not redis["spec"].get("volumeClaimTemplates"):
        probs.append("StatefulSet/redis with a volumeClaimTemplate required")
    else:
        rc = redis["spec"]["template"]["spec"]["containers"][0]
        if rc.get("command") != ["sh", "/etc/redis/redis-start.sh"]:
            probs.append("StatefulSet/redis: must start through redis-start.sh (renders the ACL users)")
        for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
            if rc.get(probe, {}).get("exec", {}).get("command") != ["sh", "/etc/redis/redis-ping.sh"]:
                probs.append(f"StatefulSet/redis: {probe} must run redis-ping.sh (PONG, not any reply)")
        renv = {e["name"]: e.get("valueFrom", {}).get("secretKeyRef", {}) for e in rc.get("env", [])}
        for user in REDIS_USERS:
            ref = renv.get(f"REDIS_{user.upper()}_PASSWORD", {})
            if (ref.get("name"), ref.get("key")) != ("redis-users", f"{user}-password"):
                probs.append(f"StatefulSet/redis: REDIS_{user.upper()}_PASSWORD must come from redis-users")
    for f in REDIS_FILES:
        with open(os.path.join(ROOT, "k8s/base", f)) as fh:
            if cm.get("redis-config", {}).get("data", {}).get(f) != fh.read():
                probs.append(f"ConfigMap/redis-config must hold k8s/base/{f} unchanged")
    secret = by_kind.get("Secret", {}).get("redis-users")
    if overlay == "prod":
        if secret is not None:
            probs.append("Secret/redis-users must not be rendered in prod (create it out of band)")
    elif secret is None or set(secret.get("data", {})) != {f"{u}-password" for u in REDIS_USERS}:
        probs.append(f"Secret/redis-users must hold exactly {[f'{u}-password' for u in REDIS_USERS]}")
    probs += network_policy_problems(by_kind, pod_labels)
    probs += image_problems(overlay, docs)
    if overlay == "cluster":
        probs += k8s_cluster_problems(by_kind)
    if "alertmanager-config" not in cm or "alertmanager" not in deployments or "redis-exporter" not in deployments:
        probs.append("Alertmanager (Deployment + alertmanager-config) and the redis-exporter Deployment required")
    with open(ALERT_RULES) as f:
        if cm.get("prometheus-rules", {}).get("data", {}).get("alerts.yml") != f.read():
            probs.append("ConfigMap/prometheus-rules must hold k8s/monitoring/alerts.yml unchanged")
    if "grafana-dashboards" not in cm:
        probs.append("ConfigMap/grafana-dashboards missing")
    return probs


def selects(selector, labels):
    """Whether a label selector (matchLabels / matchExpressions with In) selects pods with LABELS."""
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for e in selector.get("matchExpressions", []):
        if e["operator"] != "In" or labels.get(e["key"]) not in e["values"]:
            return False
    return True


def network_policy_problems(by_kind, pod_labels):
    probs = []
    nps = by_kind.get("NetworkPolicy", {})
    deny = nps.get("default-deny")
    if not deny or deny["spec"].get("podSelector") != {} or set(deny["spec"].get("policyTypes", [])) != {"Ingress", "Egress"} \
            or deny["spec"].get("ingress") or deny["spec"].get("egress"):
        probs.append("NetworkPolicy/default-deny must select every pod and allow nothing in or out")
    # Every workload has a policy of its own (beyond the namespace-wide ones).
    for labels in pod_labels:
        own = [n for n, np in nps.items() if np["spec"].get("podSelector") and selects(np["spec"]["podSelector"], labels)]
        if not own:
            probs.append(f"pods {labels.get('app.kubernetes.io/name')}: no NetworkPolicy of their own")

    def ingress_sources(name, port):
        """The pod names allowed in on PORT of the pods named NAME (None: from anywhere or other namespaces)."""
        names = set()
        for np in nps.values():
            if not selects(np["spec"].get("podSelector", {}), {"app.kubernetes.io/name": name}):
                continue
            for rule in np["spec"].get("ingress", []):
                if rule.get("ports") and not any(p.get("port") == port for p in rule["ports"]):
                    continue
                for peer in rule.get("from", [None]):
                    if peer is None or "podSelector" not in peer or "namespaceSelector" in peer or "ipBlock" in peer:
                        names.add(None if peer is None or "namespaceSelector" not in peer else "other namespaces")
                        continue
                    sel = peer["podSelector"]
                    names |= set(sel.get("matchLabels", {}).get("app.kubernetes.io/name", "").split()) - {""}
                    for e in sel.get("matchExpressions", []):
                        names |= set(e["values"])
        return names

    want = {
        ("redis", 6379): REDIS_CLIENTS,
        ("engine", 9101): {"prometheus"},
        ("economy", 9102): {"prometheus"},
        ("gateway", 9103): {"prometheus"},
        ("gateway", 8080): {"other namespaces"},
        ("redis-exporter", 9121): {"prometheus"},
        ("alertmanager", 9093): {"prometheus"},
    }
    for (name, port), allowed in want.items():
        got = ingress_sources(name, port)
        if got != allowed:
            probs.append(f"NetworkPolicies: {name}:{port} must accept {sorted(allowed)} only, accepts {sorted(map(str, got))}")
    return probs


def image_problems(overlay, docs):
    """Prod pulls the cnit images from a registry named in the overlay, never Docker Hub's cnit/*."""
    probs = []
    for d in docs:
        pod = d.get("spec", {}).get("template", {}).get("spec", {})
        for c in pod.get("containers", []):
            image = c["image"]
            if overlay == "prod" and image.startswith("cnit/"):
                probs.append(f"{d['kind']}/{d['metadata']['name']}: {image} is a Docker Hub name; prod needs a registry")
            if overlay == "prod" and "/cnit/" in image and "." not in image.split("/")[0]:
                probs.append(f"{d['kind']}/{d['metadata']['name']}: {image} has no registry host")
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
    elif len(argv) == 3 and argv[1] == "compose-cluster":
        probs = check_compose_cluster(argv[2])
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
