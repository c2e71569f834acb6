#!/usr/bin/env python3
# Proves the Redis ACL users (k8s/base/redis-users.acl) let each service do its work and nothing more; run by check-deploy.sh.
"""Starts a real redis-server on a free port through k8s/base/redis-start.sh (the same script and ACL
file as Kubernetes and compose, with random passwords), then:

1. the default user is shut out;
2. a cluster runs with each service as its own Redis user: engine, economy and gateway binaries,
   a vs-AI match created over the lobby API, a player joining over the WebSocket and queueing
   production (gateway -> cmd), the AI's commands (economy -> cmd), ticks and economy steps,
   a battle built by the engine from its MatchCreated (seek), an undecodable command dead-lettered by the engine,
   a second engine taking the match over after the first hands it back on SIGTERM (engines and
   economies waiting for a replica's acknowledgements: WAIT, then ROLE on this lone node), and the
   replay tool listing and exporting as the read-only `replay` user. Redis' ACL LOG must stay
   empty: no command any of them sent was refused;
3. every user is refused what it must not do: FLUSHALL, CONFIG SET, KEYS, DEL, SHUTDOWN,
   ACL changes, the same through a script, and writes to streams other services own;
4. scripts/redis-ping.sh (the probes) fails while Redis is still loading its data, where a plain
   `redis-cli ping` succeeds.

Usage: redis-acl-check.py BIN_DIR   (BIN_DIR holds engine, economy, gateway, replay-tool)
Prints one line per check and ends with `redis-acl-check: N passed, M failed`.
"""
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

from websockets.sync.client import connect as ws_connect

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BASE = os.path.join(ROOT, "k8s/base")
USERS = ("admin", "engine", "economy", "gateway", "replay", "exporter")
# A prefix other than the default one proves the ACL follows CNIT_PREFIX.
PREFIX = "aclcheck"
# How long one wait for the cluster may take before the check fails (seconds).
WAIT_LIMIT = 60

passed = 0
failed = 0



def protocol_version():
    """The browser protocol version the gateway speaks (gateway/src/limits.rs)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, "gateway", "src", "limits.rs"), encoding="utf-8") as f:
        for line in f:
            if line.startswith("pub const PROTOCOL_VERSION: u32 = "):
                return int(line.rsplit("=", 1)[1].strip().rstrip(";"))
    raise SystemExit("PROTOCOL_VERSION not found in gateway/src/limits.rs")

def report(ok, name, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"  ok    {name}")
    else:
        failed += 1
        print(f"  FAIL  {name}" + (f": {detail}" if detail else ""))
    return ok


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what, pred, limit=WAIT_LIMIT):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            if pred():
                return True
        except Exception:  # noqa: BLE001 - not up yet
            pass
        time.sleep(0.2)
    raise TimeoutError(f"timed out waiting for {what}")


class Redis:
    """A redis-server started by k8s/base/redis-start.sh in a temporary directory."""

    def __init__(self, tmp, passwords, extra=()):
        self.tmp, self.passwords, self.port = tmp, passwords, free_port()
        conf_dir = os.path.join(tmp, "conf")
        os.makedirs(conf_dir, exist_ok=True)
        # The real redis.conf with only its data directory moved; the real ACL template.
        with open(os.path.join(BASE, "redis.conf")) as f, open(os.path.join(conf_dir, "redis.conf"), "w") as out:
            for line in f:
                out.write(f"dir {tmp}\n" if line.startswith("dir ") else line)
        shutil.copy(os.path.join(BASE, "redis-users.acl"), conf_dir)
        self.env = dict(os.environ, REDIS_CONF_DIR=conf_dir, REDIS_ACL_FILE=os.path.join(tmp, "run/users.acl"),
                        CNIT_PREFIX=PREFIX, REDIS_PING_PORT=str(self.port))
        for user, pw in passwords.items():
            self.env[f"REDIS_{user.upper()}_PASSWORD"] = pw
        self.extra = list(extra)
        self.proc = None

    def start(self, *more):
        log = open(os.path.join(self.tmp, "redis.log"), "a")
        self.proc = subprocess.Popen(
            ["sh", os.path.join(BASE, "redis-start.sh"), "--bind", "127.0.0.1", "--port", str(self.port),
             *self.extra, *more],
            env=self.env, stdout=log, stderr=subprocess.STDOUT)

    def ping_ok(self):
        """scripts' probe: k8s/base/redis-ping.sh."""
        return subprocess.run(["sh", os.path.join(BASE, "redis-ping.sh")], env=self.env).returncode == 0

    def cli(self, user, *args):
        """redis-cli as USER (None: no user). Returns (exit code, output)."""
        env = dict(os.environ)
        cmd = ["redis-cli", "--no-auth-warning", "-h", "127.0.0.1", "-p", str(self.port)]
        if user:
            env["REDISCLI_AUTH"] = self.passwords[user]
            cmd += ["--user", user]
        r = subprocess.run(cmd + list(args), env=env, capture_output=True, timeout=30)
        return r.returncode, (r.stdout + r.stderr).decode(errors="replace").strip()

    def admin(self, *args):
        return self.cli("admin", *args)[1]

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.cli("admin", "shutdown", "nosave")
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


class Cluster:
    """Service processes, each with its own Redis user."""

    def __init__(self, bins, redis, tmp):
        self.bins, self.redis, self.tmp, self.procs = bins, redis, tmp, {}

    def url(self, user):
        return f"redis://{user}:{self.redis.passwords[user]}@127.0.0.1:{self.redis.port}"

    def start(self, name, binary, user, env):
        log = open(os.path.join(self.tmp, f"{name}.log"), "w")
        full = dict(os.environ, REDIS_URL=self.url(user), CNIT_PREFIX=PREFIX, RUST_LOG="info", **env)
        self.procs[name] = subprocess.Popen([os.path.join(self.bins, binary)], env=full, stdout=log,
                                            stderr=subprocess.STDOUT)

    def stop(self, name, sig=signal.SIGTERM):
        p = self.procs.pop(name)
        if p.poll() is None:
            p.send_signal(sig)
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def stop_all(self):
        for name in list(self.procs):
            self.stop(name)

    def logs(self):
        for name in sorted(os.listdir(self.tmp)):
            if name.endswith(".log"):
                with open(os.path.join(self.tmp, name)) as f:
                    tail = f.read().splitlines()[-15:]
                print(f"--- {name} (last lines) ---")
                print("\n".join(tail))


def http(method, url, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.status, r.read().decode()


def xlen(redis, key):
    out = redis.admin("xlen", key)
    return int(out) if out.isdigit() else -1


def play(gateway_url, token):
    """Joins as the token's player and queues a rifleman; returns the ack or rejection."""
    ws_url = gateway_url.replace("http://", "ws://") + "/ws"
    with ws_connect(ws_url, open_timeout=10) as ws:
        ws.send(json.dumps({"t": "hello", "protocol": protocol_version()}))
        ws.send(json.dumps({"t": "join", "token": token, "last_tick": None}))
        seen = set()
        deadline = time.monotonic() + WAIT_LIMIT
        sent = False
        while time.monotonic() < deadline:
            msg = json.loads(ws.recv(timeout=WAIT_LIMIT))
            seen.add(msg.get("t"))
            if msg.get("t") == "error":
                return msg
            # Once the world has arrived (a keyframe read from the view stream), command.
            if not sent and "keyframe" in seen:
                ws.send(json.dumps({"t": "cmd", "seq": 1, "cmd": {"kind": "queue", "item": "rifleman"}}))
                sent = True
            if msg.get("t") in ("ack", "rejected") and msg.get("seq") == 1:
                return msg
        return {"t": "timeout", "seen": sorted(seen)}


def scenario(bins, redis, tmp):
    """Part 2: the services at work, each as its own user."""
    cluster = Cluster(bins, redis, tmp)
    try:
        ops = {n: free_port() for n in ("engine", "engine2", "economy", "gateway-ops")}
        gw_port = free_port()
        # Commits wait for a replica (WAIT): on this lone node every wait falls short, so the
        # bus also asks ROLE; both must be allowed to the engine and economy users.
        common = {"CNIT_LEASE_IDLE_MS": "1000", "CNIT_REDIS_WAIT_REPLICAS": "1"}
        cluster.start("engine", "engine", "engine", dict(common, CNIT_OPS_ADDR=f"127.0.0.1:{ops['engine']}"))
        cluster.start("economy", "economy", "economy", dict(common, CNIT_OPS_ADDR=f"127.0.0.1:{ops['economy']}"))
        gw_ops = f"127.0.0.1:{ops['gateway-ops']}"
        cluster.start("gateway", "gateway", "gateway", {
            "GATEWAY_LISTEN": f"127.0.0.1:{gw_port}", "GATEWAY_TOKEN_SECRET": secrets.token_hex(32),
            "OPS_ADDR": gw_ops, "CNIT_OPS_ADDR": gw_ops, "GATEWAY_OPS_ADDR": gw_ops})
        gw = f"http://127.0.0.1:{gw_port}"
        for name, port in (("engine", ops["engine"]), ("economy", ops["economy"])):
            wait_for(f"{name} /health", lambda p=port: http("GET", f"http://127.0.0.1:{p}/health")[0] == 200)
        wait_for("gateway /ready", lambda: http("GET", f"{gw}/ready")[0] == 200)
        report(True, "engine, economy and gateway start and reach Redis as their own users")

        status, body = http("POST", f"{gw}/api/matches", {"mode": "vs_ai", "map_size": 32})
        created = json.loads(body)
        m = created["match"]
        key = lambda what: f"{PREFIX}:{{m:{m}}}:{what}"  # noqa: E731
        report(status == 201, "gateway creates a vs-AI match (matches stream)", body)
        wait_for("ticks", lambda: xlen(redis, key("tick")) > 20)
        report(True, "engine claims the match and commits ticks (tick, view, snap)")
        wait_for("economy steps", lambda: xlen(redis, key("eco")) > 20)
        report(True, "economy claims the match and commits steps (eco)")

        answer = play(gw, created["grant"]["token"])
        report(answer.get("t") == "ack", "player joins over the WebSocket and a command is appended (gateway -> cmd)",
               json.dumps(answer))
        # The AI opponent's commands carry `source: {bot: ..}` (msgpack: the key "bot").
        wait_for("the AI's commands", lambda: "bot" in redis.admin("xrange", key("cmd"), "-", "+"))
        report(True, "the AI's commands reach the cmd stream (economy -> cmd)")

        status, body = http("POST", f"{gw}/api/matches", {"mode": "battle", "map_size": 32, "units": 2})
        battle = json.loads(body)["match"] if status == 201 else None
        report(status == 201, "gateway creates a battle (matches stream)", body)
        wait_for("the battle's built state", lambda: xlen(redis, f"{PREFIX}:{{m:{battle}}}:seek") >= 1)
        report(True, "engine builds the battle and keeps its first state (seek)")

        redis.admin("xadd", key("cmd"), "*", "d", "not a command")
        wait_for("the dead letter", lambda: xlen(redis, f"{PREFIX}:dlq") >= 1)
        report(True, "engine dead-letters an undecodable command (dlq)")

        # Hand-over: SIGTERM releases the lease (a Lua script); a new engine claims it.
        cluster.stop("engine")
        before = xlen(redis, key("tick"))
        cluster.start("engine2", "engine", "engine", dict(common, CNIT_OPS_ADDR=f"127.0.0.1:{ops['engine2']}"))
        wait_for("the takeover", lambda: xlen(redis, key("tick")) > before + 20)
        report(True, "a second engine takes the match over after the first hands it back")

        env = dict(os.environ, REDIS_URL=cluster.url("replay"), CNIT_PREFIX=PREFIX)
        tool = os.path.join(bins, "replay-tool")
        r = subprocess.run([tool, "list", "--json"], env=env, capture_output=True, text=True, timeout=60)
        report(r.returncode == 0 and m in r.stdout, "replay tool lists the matches as the read-only replay user",
               r.stderr[-500:])
        out = os.path.join(tmp, "m.cnit")
        r = subprocess.run([tool, "export", "--match", m, "-o", out], env=env, capture_output=True, text=True,
                           timeout=120)
        report(r.returncode == 0 and os.path.getsize(out) > 0, "replay tool exports the match as the replay user",
               r.stderr[-500:])
        r = subprocess.run([tool, "import", out, "--as", "copy"], env=env, capture_output=True, text=True, timeout=60)
        report(r.returncode != 0 and "noperm" in (r.stdout + r.stderr).lower(), "replay user cannot import (write)",
               (r.stdout + r.stderr)[-300:])
        redis.admin("acl", "log", "reset")  # the refused import above is the only expected entry

        # Let the leases be kept alive (touch scripts) a few times more, then read the log.
        time.sleep(3)
        alive = [n for n, p in cluster.procs.items() if p.poll() is not None]
        report(not alive, "no service exited", ", ".join(alive))
        log = redis.admin("acl", "log")
        report(log == "", "ACL LOG is empty: Redis refused nothing the services sent", log[:2000])
    except Exception as e:  # noqa: BLE001 - reported as a failure with the services' logs
        report(False, "scenario", repr(e))
    finally:
        cluster.stop_all()
    if failed:
        cluster.logs()


# Commands nobody but admin may run: (description, args).
FORBIDDEN_FOR_ALL = [
    ("FLUSHALL", ["flushall"]),
    ("FLUSHDB", ["flushdb"]),
    ("CONFIG SET", ["config", "set", "maxmemory", "1"]),
    ("KEYS", ["keys", "*"]),
    ("DEL a match's stream", ["del", f"{PREFIX}:{{m:x}}:cmd"]),
    ("SHUTDOWN", ["shutdown", "nosave"]),
    ("ACL SETUSER", ["acl", "setuser", "intruder", "on", ">password-of-16chars", "+@all", "~*"]),
    ("SAVE", ["save"]),
    ("SCRIPT FLUSH", ["script", "flush"]),
    ("CLIENT KILL", ["client", "kill", "type", "normal"]),
    ("FLUSHALL inside a script", ["eval", "return redis.call('flushall')", "0"]),
    ("SET", ["set", f"{PREFIX}:x", "1"]),
]


def xadd(stream):
    return ["xadd", stream, "*", "d", "forged"]


def refused(code_out):
    code, out = code_out
    return "NOPERM" in out or "can't run this command" in out or "no permissions" in out


def negatives(redis):
    """Part 3: what each user must not do."""
    mk = lambda what: f"{PREFIX}:{{m:x}}:{what}"  # noqa: E731
    code, out = redis.cli(None, "ping")
    report("NOAUTH" in out, "no user: PING refused (NOAUTH)", out)
    code, out = redis.cli(None, "auth", "default", "anything")
    report("WRONGPASS" in out or "disabled" in out, "default user cannot log in", out)
    code, out = redis.cli("engine", "auth", "engine", "wrong-password-123")
    report("WRONGPASS" in out, "a wrong password is refused", out)
    for user in ("engine", "economy", "gateway", "replay", "exporter"):
        for name, args in FORBIDDEN_FOR_ALL:
            r = redis.cli(user, *args)
            report(refused(r), f"{user}: {name} refused", r[1])
    cross = {
        "engine": [mk("cmd"), mk("eco")],
        "economy": [mk("tick"), mk("view"), mk("seek"), f"{PREFIX}:matches"],
        "gateway": [mk("tick"), mk("eco"), mk("view"), mk("snap"), mk("seek"), f"{PREFIX}:dlq"],
        "replay": [mk("cmd"), mk("tick"), f"{PREFIX}:matches"],
        "exporter": [mk("cmd")],
    }
    for user, streams in cross.items():
        for s in streams:
            r = redis.cli(user, *xadd(s))
            report(refused(r), f"{user}: XADD {s} refused", r[1])
        r = redis.cli(user, "eval", "return redis.call('xadd', KEYS[1], '*', 'd', 'x')", "1", streams[0])
        report(refused(r), f"{user}: XADD {streams[0]} inside a script refused", r[1])
    r = redis.cli("engine", "xadd", "other:{m:x}:tick", "*", "d", "x")
    report(refused(r), "engine: a stream outside the prefix refused", r[1])
    r = redis.cli("exporter", "xrange", mk("cmd"), "-", "+")
    report(refused(r), "exporter: reading a stream refused", r[1])
    # What each may do, as a control (the refusals above are not a broken login).
    for user, args in (("engine", xadd(mk("tick"))), ("economy", xadd(mk("eco"))), ("gateway", xadd(mk("cmd"))),
                       ("replay", ["xrange", mk("cmd"), "-", "+"]), ("exporter", ["info", "memory"]),
                       ("exporter", ["config", "get", "maxmemory"])):
        r = redis.cli(user, *args)
        report(r[0] == 0 and not refused(r) and "ERR" not in r[1], f"{user}: {' '.join(args[:2])} allowed", r[1])


def loading(tmp, passwords):
    """Part 4: the probe fails while Redis loads its data."""
    redis = Redis(tmp, passwords, extra=["--appendonly", "no", "--dbfilename", "dump.rdb"])
    try:
        redis.start()
        wait_for("redis", redis.ping_ok)
        redis.admin("eval", "for i = 1, 20000 do redis.call('set', 'k' .. i, i) end", "0")
        redis.admin("save")
        redis.stop()
        # 20,000 keys at 10 us or more each: a few seconds of LOADING, answering clients meanwhile.
        redis.start("--key-load-delay", "10", "--loading-process-events-interval-bytes", "1024")
        wait_for("LOADING", lambda: "LOADING" in redis.cli("admin", "ping")[1], limit=10)
        plain = redis.cli("admin", "ping")
        probe = redis.ping_ok()
        report(plain[0] == 0 and "LOADING" in plain[1] and not probe,
               "while loading: `redis-cli ping` exits 0, redis-ping.sh fails", f"plain={plain} probe={probe}")
        wait_for("loaded", redis.ping_ok, limit=60)
        report(True, "once loaded: redis-ping.sh succeeds")
    except Exception as e:  # noqa: BLE001
        report(False, "loading probe", repr(e))
    finally:
        redis.stop()


def main(argv):
    if len(argv) != 2:
        print(__doc__)
        return 2
    bins = argv[1]
    passwords = {u: secrets.token_hex(16) for u in USERS}
    with tempfile.TemporaryDirectory(prefix="cnit-acl-") as tmp:
        redis = Redis(os.path.join(tmp, "main"), passwords)
        try:
            redis.start()
            wait_for("redis-ping.sh", redis.ping_ok, limit=20)
            report(True, "redis-start.sh renders the ACL and Redis starts; redis-ping.sh answers")
            scenario(bins, redis, os.path.join(tmp, "main"))
            negatives(redis)
        except Exception as e:  # noqa: BLE001
            report(False, "redis", repr(e))
        finally:
            redis.stop()
        loading(os.path.join(tmp, "loading"), passwords)
    print(f"redis-acl-check: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
