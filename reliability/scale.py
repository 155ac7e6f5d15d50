"""Scale-out suite: three API processes behind HAProxy, on a 6-node Redis Cluster and a MariaDB
primary/replica pair, under load while parts of them fail.

Not run by itself: `reliability/run.py --suite scale` runs it. The cluster and the pair are
started by `.ci/cluster/redis` and `.ci/cluster/mariadb` (fixed ports 7000-7005, 3307 and 3308,
which must be free) in a temporary folder, and stopped at the end.

- Redis master killed (SIGKILL): the cluster promotes its replica; the killed node is started
  again once the promotion is seen, as a supervisor would. The API must answer again within
  5 s, and no session revoked before the kill, or whose revocation was acknowledged during it,
  may work afterwards.
- MySQL replica stopped, then started: other users' reads keep working with no error, on the
  primary; they return to the replica when it is back.
- Replication stopped for longer than REPLICA_MAX_LAG: the replica is skipped, so a user
  registered meanwhile is found by other users at once.
- One API process killed (SIGKILL) under registrations: HAProxy routes around it, and every
  registration answered 200 is in the database.
"""

import json
import os
import re
import signal
import subprocess
import tempfile
import time
import uuid

from common import PASSWORD, ROOT, Client, Server, error_code, free_port, login, port_open, register, wait_until
from faults import Load, fmt, gql_me, latency_ms, outcomes, registrations, window

CLUSTER_PORTS = [7000, 7001, 7002, 7003, 7004, 7005]
CLUSTER_URL = "redis+cluster://127.0.0.1:7000,127.0.0.1:7001,127.0.0.1:7002"
PRIMARY, REPLICA = 3307, 3308
DATABASE = "rel_scale"
MAX_LAG = 2
USERS = 24


# --- the engines ---------------------------------------------------------------------------


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw).stdout


def mysql(port, statement):
    return sh(["mysql", "--no-defaults", "--protocol=tcp", "-h", "127.0.0.1", "-P", str(port), "-u", "root", "-N", "-B",
               "-e", statement])


def redis(port, *args):
    return subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True, text=True).stdout


def masters():
    """Ports of the cluster's masters, as node 7000..7005 (the first that answers) sees them."""
    for port in CLUSTER_PORTS:
        out = redis(port, "cluster", "nodes")
        if out:
            found = []
            for line in out.splitlines():
                fields = line.split()
                if "master" in fields[2] and "fail" not in fields[2]:
                    found.append(int(fields[1].split("@")[0].rsplit(":", 1)[1]))
            return sorted(found)
    return []


def cluster_ok(ports):
    return all("cluster_state:ok" in redis(p, "cluster", "info") for p in ports)


def replicas_online():
    """Replicas in sync with their master, over the whole cluster."""
    return sum(len(re.findall(r"^slave\d+:.*state=online", redis(p, "info", "replication"), re.M)) for p in CLUSTER_PORTS)


class Process:
    """A daemon found by its pid file, killed, and started again with the same command line."""

    def __init__(self, pidfile, argv=None):
        self.pid = int(open(pidfile).read().strip())
        if argv is None:
            with open(f"/proc/{self.pid}/cmdline", "rb") as f:
                argv = [a.decode() for a in f.read().split(b"\0") if a]
        self.argv = argv

    def kill(self, sig):
        os.kill(self.pid, sig)
        wait_until(lambda: not os.path.exists(f"/proc/{self.pid}") or _zombie(self.pid), 60, f"pid {self.pid} exiting", 0.01)

    def start(self):
        proc = subprocess.Popen(self.argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        self.pid = proc.pid


def _zombie(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] == "Z"
    except OSError:
        return True


class Engines:
    """The Redis Cluster and the MariaDB pair, in a folder of their own."""

    def __init__(self):
        busy = [p for p in CLUSTER_PORTS + [PRIMARY, REPLICA] if port_open(p)]
        if busy:
            raise RuntimeError(f"ports {busy} are in use: stop what runs there (.ci/cluster/* stop <dir>) first")
        # mariadbd runs as `mysql`, which must reach its data folder.
        self.dir = tempfile.mkdtemp(prefix="user-api-scale-", dir="/tmp")
        os.chmod(self.dir, 0o755)
        self.started = []
        sh([os.path.join(ROOT, ".ci", "cluster", "redis"), "start", f"{self.dir}/redis"])
        self.started.append("redis")
        sh([os.path.join(ROOT, ".ci", "cluster", "mariadb"), "start", f"{self.dir}/mariadb"])
        self.started.append("mariadb")

    def redis_node(self, port):
        # Redis rewrites its process title, so its command line is rebuilt as
        # .ci/cluster/redis gives it (in the foreground here, so that its pid is known).
        node = f"{self.dir}/redis/{port}"
        argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--daemonize", "no", "--dir", node,
                "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000",
                "--save", "", "--appendonly", "no", "--logfile", f"{node}/redis.log"]
        return Process(f"{node}/redis.pid", argv)

    def replica(self):
        return Process(f"{self.dir}/mariadb/replica/mariadbd.pid")

    def stop(self):
        for name in reversed(self.started):
            subprocess.run([os.path.join(ROOT, ".ci", "cluster", name), "stop", f"{self.dir}/{name}"], capture_output=True)
        # A node or server started again by this suite has no pid file of the scripts' making.
        subprocess.run(["pkill", "-f", f"{self.dir}/"], capture_output=True)
        self.started = []


# --- HAProxy -------------------------------------------------------------------------------


HAPROXY_CFG = """global
    maxconn 4096
defaults
    mode http
    timeout connect 1s
    timeout client 30s
    timeout server 30s
    # Only a request that never reached a process is sent to another: a retried write could
    # otherwise be applied twice.
    retries 3
    option redispatch
    retry-on conn-failure
    option http-buffer-request
frontend api
    bind 127.0.0.1:{port}
    default_backend apis
backend apis
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
{servers}
"""


class HAProxy:
    def __init__(self, workdir, servers):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.cfg = os.path.join(workdir, "haproxy.cfg")
        lines = [f"    server api{i} 127.0.0.1:{s.port} check inter 500 fall 2 rise 2" for i, s in enumerate(servers)]
        with open(self.cfg, "w") as f:
            f.write(HAPROXY_CFG.format(port=self.port, servers="\n".join(lines)))
        self.log = open(os.path.join(workdir, "haproxy.log"), "a")
        self.proc = subprocess.Popen(["haproxy", "-db", "-f", self.cfg], stdout=self.log, stderr=subprocess.STDOUT)
        wait_until(lambda: port_open(self.port), 10, "HAProxy listening")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


# --- load ----------------------------------------------------------------------------------


def read_other(ids, tokens):
    """`user(id:)` of another user: a read that may go to a replica."""
    query = "query($id: ID!) { user(id: $id) { username } }"

    def op(client, index, n):
        k = (index + n) % len(ids)
        status, body = client.gql(query, {"id": ids[k]}, token=tokens[(k + 1) % len(tokens)])
        if status == 200 and ((body.get("data") or {}).get("user") or {}).get("username"):
            return "ok", None
        return error_code(body) or f"http {status}", None
    return op


def churn(names):
    """Logs a user in and out; the detail is the token once its logout was acknowledged."""
    def op(client, index, n):
        name = names[(index * 7 + n) % len(names)]
        status, _, text = client.request("POST", "/users/login", {"username": name, "password": PASSWORD})
        if status != 200:
            return f"login {status}", None
        token = json.loads(text)["access_token"]
        status, _, _ = client.request("POST", "/users/logout", token=token)
        return ("ok", token) if status == 204 else (f"logout {status}", None)
    return op


def refused(client, token):
    status, body = client.gql("{ me { id } }", token=token)
    return error_code(body) == "UNAUTHENTICATED", error_code(body) or ("me" if (body.get("data") or {}).get("me") else f"http {status}")


def last_failure(records, since, names=None):
    """Seconds from `since` to the end of the last failed call that ended after it (0: none)."""
    return max((r[1] - since for r in records if r[1] >= since and r[3] != "ok" and (names is None or r[2] in names)), default=0.0)


def replica_states(servers):
    states = []
    for s in servers:
        c = Client(s.url, timeout=5)
        try:
            _, _, text = c.request("GET", "/readyz")
            states.append([r["state"] for r in json.loads(text).get("database_replicas", [])])
        except (OSError, ValueError):
            states.append(["?"])
        finally:
            c.close()
    return states


def lagging_reads(servers, target):
    total = 0
    for s in servers:
        c = Client(s.url, timeout=5)
        try:
            _, _, text = c.request("GET", "/metrics")
        finally:
            c.close()
        m = re.search(r'^db_lagging_reads_total\{target="%s"\} (\d+)' % target, text, re.M)
        total += int(m.group(1)) if m else 0
    return total


# --- the suite -----------------------------------------------------------------------------


def scale(ctx, section):
    engines = Engines()
    servers, proxy = [], None
    try:
        mysql(PRIMARY, f"CREATE DATABASE {DATABASE} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        wait_until(lambda: DATABASE in mysql(REPLICA, "SHOW DATABASES"), 30, "the replica holding the database")
        env = {
            "DATABASE_URL": f"mysql://root@127.0.0.1:{PRIMARY}/{DATABASE}",
            "DATABASE_REPLICA_URLS": f"mysql://root@127.0.0.1:{REPLICA}/{DATABASE}",
            "REPLICA_MAX_LAG": str(MAX_LAG),
            "REDIS_URL": CLUSTER_URL,
            "REDIS_KEY_PREFIX": f"rel-scale-{uuid.uuid4().hex[:8]}:",
        }
        # One after another: the first applies the migrations.
        servers = [Server(env, ctx.workdir, f"scale-{i}") for i in range(3)]
        proxy = HAProxy(ctx.workdir, servers)
        section.command(".ci/cluster/redis start <dir>   # 3 masters + 3 replicas on 7000-7005, cluster-node-timeout 2 s")
        section.command(".ci/cluster/mariadb start <dir>   # primary 3307, GTID replica 3308")
        section.command(f"3 × user-api with DATABASE_URL=mysql://…:{PRIMARY}/{DATABASE} DATABASE_REPLICA_URLS=mysql://…:{REPLICA}/{DATABASE} "
                        f"REPLICA_MAX_LAG={MAX_LAG} REDIS_URL={CLUSTER_URL}, behind HAProxy {haproxy_version()} "
                        "(roundrobin, GET /readyz checked every 500 ms, fall 2 rise 2, retry-on conn-failure)")
        client = Client(proxy.url)
        run_id = uuid.uuid4().hex[:6]
        names = [f"s{run_id}_{i}" for i in range(USERS)]
        tokens = [register(client, n) for n in names]
        ids = []
        for t in tokens:
            _, body = client.gql("{ me { id } }", token=t)
            ids.append(body["data"]["me"]["id"])
        redis_master_killed(ctx, section, engines, proxy, servers, names, tokens, ids)
        replica_stopped(ctx, section, engines, proxy, servers, tokens, ids)
        replication_stopped(ctx, section, proxy, servers, names, tokens, ids)
        api_killed(ctx, section, proxy, servers, tokens, run_id)
    finally:
        if proxy:
            proxy.stop()
        for s in servers:
            s.stop()
        engines.stop()


def haproxy_version():
    out = subprocess.run(["haproxy", "-v"], capture_output=True, text=True).stdout
    m = re.search(r"version (\S+)", out)
    return m.group(1) if m else "?"


def redis_master_killed(ctx, section, engines, proxy, servers, names, tokens, ids):
    client = Client(proxy.url)
    # Sessions revoked before the kill: two per user, one logged out.
    revoked = []
    for name in names:
        for _ in range(2):
            token = login(client, name)
        status, _, _ = client.request("POST", "/users/logout", token=token)
        if status != 204:
            raise RuntimeError(f"logout answered {status}")
        revoked.append(token)
    load = Load(proxy.url, [("me", gql_me(tokens)), ("read", read_other(ids, tokens)), ("churn", churn(names))], 6)
    load.start()
    time.sleep(3)
    victim_port = masters()[0]
    victim = engines.redis_node(victim_port)
    killed = time.monotonic()
    victim.kill(signal.SIGKILL)
    others = [p for p in CLUSTER_PORTS if p != victim_port]

    def promoted():
        now = masters()
        return len(now) == 3 and victim_port not in now and cluster_ok(others)

    # Started again before the cluster gave up on it, the node (which keeps nothing on disk)
    # would come back as the master of its slots, empty.
    wait_until(promoted, 30, "the cluster promoting a replica", 0.05)
    promoted = time.monotonic() - killed
    victim.start()
    wait_until(lambda: cluster_ok(CLUSTER_PORTS) and replicas_online() >= 3, 30, "the killed node rejoining as a replica", 0.05)
    rejoined = time.monotonic() - killed
    time.sleep(6)
    records = load.stop()
    c = section.command(f"6 clients through HAProxy: GraphQL me, user(id:) of another user, REST login + logout; "
                        f"after 3 s, kill -9 the master on {victim_port}; start it again once the cluster is ok")
    before = window(records, killed - 3, killed)
    after = [r for r in records if r[0] >= killed]
    section.figure("Redis master killed: calls before the kill", fmt(outcomes(before)), c)
    section.figure("Redis master killed: calls from the kill on", fmt(outcomes(after)), c)
    section.figure("Redis master killed: replica promoted after", f"{promoted:.1f} s", c)
    section.figure("Redis master killed: killed node back as a replica after", f"{rejoined:.1f} s", c)
    revocations = [r for r in records if r[3].startswith("logout ")]
    others_failed = [r for r in records if r not in revocations]
    back = last_failure(others_failed, killed)
    # From this moment on, every call that started succeeded: the recovery. A call made just
    # before it may still fail later, when it gives up waiting (POOL_TIMEOUT), as `back` shows.
    recovered = max((r[0] - killed for r in others_failed if r[3] != "ok" and r[1] >= killed), default=0.0)
    revocations_back = last_failure(revocations, killed)
    section.figure("Redis master killed: me and reads from the kill on, latency",
                   latency_ms([r for r in after if r[2] in ("me", "read")]), c)
    section.figure("Redis master killed: last failed call other than a logout ended", f"{back:.1f} s after the kill", c)
    section.figure("Redis master killed: last refused logout ended after the kill", f"{revocations_back:.1f} s", c)
    section.figure("Redis master killed: every call other than a logout started from then on succeeded", f"{recovered:.1f} s after the kill", c)
    section.check("Redis master killed: the API recovers within 5 s", recovered <= 5.0,
                  f"every call started {recovered:.1f} s after the kill or later succeeded; the last failure ended at {back:.1f} s")
    # REDIS_REVOCATION_REPLICAS=1: a logout on the failed shard waits for a replica to hold
    # it, and the promoted master has none until the killed node is back as its replica.
    section.check("Redis master killed: logouts refused (503) only until the shard has a replica again",
                  revocations_back <= rejoined + 1.0,
                  f"last refused logout {revocations_back:.1f} s after the kill; the shard had a replica again after {rejoined:.1f} s")
    acknowledged = [r[4] for r in records if r[2] == "churn" and r[3] == "ok" and r[4]]
    checker = Client(proxy.url)
    alive = []
    for token in revoked + acknowledged:
        ok, outcome = refused(checker, token)
        if not ok:
            alive.append(outcome)
    section.figure("Redis master killed: revoked sessions checked afterwards",
                   f"{len(revoked)} revoked before the kill + {len(acknowledged)} logouts acknowledged during the run", c)
    section.check("Redis master killed: zero revoked sessions work again", not alive and revoked and acknowledged,
                  f"{len(alive)} of {len(revoked) + len(acknowledged)} answered other than UNAUTHENTICATED"
                  + (f" ({', '.join(sorted(set(alive)))})" if alive else ""))


def replica_stopped(ctx, section, engines, proxy, servers, tokens, ids):
    load = Load(proxy.url, [("me", gql_me(tokens)), ("read", read_other(ids, tokens))], 6)
    load.start()
    time.sleep(3)
    replica = engines.replica()
    on_primary_before = lagging_reads(servers, "primary")
    stopped = time.monotonic()
    replica.kill(signal.SIGTERM)
    time.sleep(4)
    states_down = replica_states(servers)
    on_primary = lagging_reads(servers, "primary") - on_primary_before
    replica.start()
    wait_until(lambda: all(s == ["ok"] for s in replica_states(servers)), 60, "the replica back in every process", 0.1)
    back = time.monotonic()
    on_replica_before = lagging_reads(servers, "replica")
    time.sleep(3)
    on_replica = lagging_reads(servers, "replica") - on_replica_before
    records = load.stop()
    c = section.command("6 clients through HAProxy: GraphQL me and user(id:) of another user; after 3 s, stop the replica "
                        "(SIGTERM); 4 s later start it again; 3 s more")
    during = [r for r in records if stopped <= r[0] < back]
    section.figure("MySQL replica stopped: calls while it was away", fmt(outcomes(during)), c)
    section.figure("MySQL replica stopped: /readyz replica state of each process while away", str(states_down), c)
    section.figure("MySQL replica stopped: other users' reads run on the primary while away", str(on_primary), c)
    section.figure("MySQL replica stopped: back in every process after", f"{back - stopped:.1f} s from the stop", c)
    section.figure("MySQL replica stopped: other users' reads on the replica in the 3 s after its return", str(on_replica), c)
    failures = {k: v for k, v in outcomes(during).items() if k != "ok"}
    section.check("MySQL replica stopped: reads move to the primary with no error", not failures and on_primary > 0
                  and all(s == ["down"] for s in states_down), fmt(failures) if failures else f"{on_primary} reads on the primary")
    section.check("MySQL replica started again: reads return to it", on_replica > 0, f"{on_replica} reads on the replica")


def replication_stopped(ctx, section, proxy, servers, names, tokens, ids):
    load = Load(proxy.url, [("read", read_other(ids, tokens))], 4)
    load.start()
    time.sleep(2)
    mysql(REPLICA, "STOP SLAVE")
    stopped = time.monotonic()
    wait_until(lambda: all(s == ["lagging"] for s in replica_states(servers)), MAX_LAG + 10, "every process skipping the replica", 0.1)
    skipped_after = time.monotonic() - stopped
    # A user registered on the primary, whom the stopped replica does not have.
    client = Client(proxy.url)
    newcomer = names[0] + "n"
    register(client, newcomer)
    seen = []
    for i in range(len(servers)):
        _, body = Client(servers[i].url).gql("query($u: String!) { user(username: $u) { username } }", {"u": newcomer}, token=tokens[1])
        seen.append(((body.get("data") or {}).get("user") or {}).get("username"))
    on_replica_stale = mysql(REPLICA, f"SELECT username FROM {DATABASE}.users WHERE username = '{newcomer}'").strip()
    mysql(REPLICA, "START SLAVE")
    restarted = time.monotonic()
    wait_until(lambda: all(s == ["ok"] for s in replica_states(servers)), 30, "the replica caught up in every process", 0.1)
    caught_up = time.monotonic() - restarted
    records = load.stop()
    c = section.command(f"4 clients through HAProxy reading other users; STOP SLAVE on the replica; once skipped, register a "
                        f"user and look them up on each process as another user; START SLAVE (REPLICA_MAX_LAG={MAX_LAG})")
    during = [r for r in records if r[0] >= stopped]
    section.figure("Replication stopped: every process skipped the replica after", f"{skipped_after:.1f} s", c)
    section.figure("Replication stopped: reads while it was stopped and after", fmt(outcomes(during)), c)
    section.figure("Replication stopped: a user registered meanwhile, as each process shows them to another user", str(seen), c)
    section.figure("Replication restarted: back in rotation after", f"{caught_up:.1f} s", c)
    failures = {k: v for k, v in outcomes(during).items() if k != "ok"}
    section.check("Replication stopped past REPLICA_MAX_LAG: the replica is skipped, reads are fresh and answered",
                  not failures and seen == [newcomer] * len(servers) and on_replica_stale == "",
                  fmt(failures) if failures else f"the replica lacked the new user; every process found {newcomer}")


def api_killed(ctx, section, proxy, servers, tokens, run_id):
    load = Load(proxy.url, [("register", registrations(run_id)), ("me", gql_me(tokens))], 6)
    load.start()
    time.sleep(3)
    victim = servers[1]
    killed = time.monotonic()
    victim.proc.kill()
    victim.proc.wait()
    time.sleep(6)
    records = load.stop()
    c = section.command("6 clients through HAProxy: registrations (REST and GraphQL in turn) and GraphQL me; after 3 s, "
                        f"kill -9 one of the three API processes (port {victim.port}); 6 s more")
    acknowledged = [r[4] for r in records if r[2] == "register" and r[3] == "ok"]
    stored = set()
    for i in range(0, len(acknowledged), 200):
        batch = acknowledged[i:i + 200]
        listed = ",".join(f"'{n}'" for n in batch)
        stored |= set(mysql(PRIMARY, f"SELECT username FROM {DATABASE}.users WHERE username IN ({listed})").split())
    lost = [n for n in acknowledged if n not in stored]
    after = [r for r in records if r[0] >= killed]
    settled = last_failure(records, killed)
    section.figure("API process killed: calls from the kill on", fmt(outcomes(after)), c)
    section.figure("API process killed: last failed call ended after the kill", f"{settled:.1f} s", c)
    section.figure("API process killed: registrations answered 200", str(len(acknowledged)), c)
    section.check("API process killed: HAProxy routes around it", settled <= 2.0 and outcomes(after).get("ok", 0) > 0,
                  f"last failure {settled:.1f} s after the kill")
    section.check("API process killed: no acknowledged write is lost", acknowledged and not lost,
                  f"{len(lost)} of {len(acknowledged)} missing")
