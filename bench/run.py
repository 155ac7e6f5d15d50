#!/usr/bin/env python3
"""Benchmarks of user-api: one command builds the release server, runs it on MySQL + Redis and
on the embedded SQLite default, drives it with wrk from a second process on loopback, and
writes bench/RESULTS.md.

    bench/run.py                       # both backends, 3 × 10 s per scenario
    bench/run.py --backend sqlite      # one backend
    bench/run.py --duration 5 --users 100000   # a quicker, smaller run

MySQL/MariaDB must answer at --mysql (default mysql://root@127.0.0.1:3306) and Redis at
--redis; a database named user_api_bench is dropped and re-created there.
"""

import argparse
import hashlib
import base64
import datetime
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The server launcher, the RSS reader and wrk's parser are the reliability suites' own.
sys.path.insert(0, os.path.join(ROOT, "reliability"))
from common import Server, parse_wrk, rss_kib  # noqa: E402
BENCH = os.path.join(ROOT, "bench")
PASSWORD = "bench password 1"

ME_QUERY = json.dumps({"query": "{ me { id username email } }"})
LOGIN_BODY = json.dumps(
    {
        "query": "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { expiresIn } }",
        "variables": {"u": "bench", "p": PASSWORD},
    }
)


# `me` as a persisted query (Apollo's APQ): kept by one POST with its hash, then sent by GET as
# the hash alone, as a CDN-friendly client sends it.
APQ_DOCUMENT = "{ me { id username email } }"
APQ_HASH = hashlib.sha256(APQ_DOCUMENT.encode()).hexdigest()
APQ_EXTENSIONS = json.dumps({"persistedQuery": {"version": 1, "sha256Hash": APQ_HASH}}, separators=(",", ":"))
APQ_REGISTER = json.dumps({"query": APQ_DOCUMENT, "extensions": json.loads(APQ_EXTENSIONS)})
APQ_GET_QUERY = "?extensions=" + urllib.parse.quote(APQ_EXTENSIONS, safe="")


def users_query(after):
    return json.dumps(
        {
            "query": "query($after: String) { users(first: 20, after: $after) { nodes { id username } pageInfo { hasNextPage endCursor } } }",
            "variables": {"after": after},
        }
    )


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw).stdout


def ensure_wrk():
    if shutil.which("wrk"):
        return
    print("installing wrk (Debian package)", flush=True)
    subprocess.run(["apt-get", "install", "-y", "wrk"], check=True, capture_output=True)


def http(method, url, body=None, token=None, timeout=10):
    req = urllib.request.Request(url, data=body.encode() if body else None, method=method)
    req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def reset_peak(pid):
    # Writing 5 to clear_refs resets the peak RSS (VmHWM) to the current RSS.
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def wrk(url, script, connections, duration, env, threads=1):
    cmd = ["wrk", "--latency", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "-s", os.path.join(BENCH, "wrk", script), url]
    out = subprocess.run(cmd, check=True, text=True, capture_output=True, env={**os.environ, **env}).stdout
    return parse_wrk(out)


def median(values):
    values = sorted(v for v in values if v is not None)
    if not values:
        return None
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def cpu_seconds(pid):
    """The CPU time a process has used so far (user and system), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        # The command name, in parentheses, may hold spaces: count fields after it.
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_once(server, url, script, connections, duration, env, i):
    """One wrk run, with the server's peak RSS during it and its CPU time per answer: the
    machine's speed drifts from run to run, the server's work per request far less."""
    reset_peak(server.proc.pid)
    cpu = cpu_seconds(server.proc.pid)
    r = wrk(url, script, connections, duration, {**env, "REPEAT": str(i)})
    cpu = cpu_seconds(server.proc.pid) - cpu
    r["peak_rss_mib"] = rss_kib(server.proc.pid, "VmHWM") / 1024
    r["cpu_us"] = cpu * 1e6 / r["requests"] if r["requests"] else None
    return r


def summarize(results, name, connections, runs, note=""):
    """req/s, p50 and p99 are the medians of the runs, peak RSS the highest, failed answers
    the sum."""
    r = {
        "rps": median(x["rps"] for x in runs),
        "p50": median(x["p50"] for x in runs),
        "p99": median(x["p99"] for x in runs),
        "cpu_us": median(x.get("cpu_us") for x in runs),
        "failed": sum(x["failed"] for x in runs),
        "peak_rss_mib": max(x["peak_rss_mib"] for x in runs),
        "each_rps": [x["rps"] for x in runs],
        "runs": runs,
    }
    r["name"], r["connections"], r["note"] = name, connections, note
    results.append(r)
    spread = "/".join(f"{x:.0f}" for x in r["each_rps"])
    print(f"  {name:<42} c{connections:<4} {r['rps']:>9.0f} req/s ({spread})  p50 {fmt_ms(r['p50'])}  p99 {fmt_ms(r['p99'])}  server CPU {fmt_us(r['cpu_us'])}/req  failed {r['failed']}  peak RSS {r['peak_rss_mib']:.1f} MiB", flush=True)
    return r


def scenario(results, server, name, url, script, connections, duration, env, repeat, note=""):
    """Runs wrk `repeat` times and summarizes the runs."""
    runs = [run_once(server, url, script, connections, duration, env, i) for i in range(repeat)]
    return summarize(results, name, connections, runs, note)


def interleaved(results, server, specs, duration, repeat):
    """Runs several scenarios in turn, `repeat` rounds of one run each (each round in another
    order), so that scenarios compared with each other meet the same moments of a machine
    whose speed drifts. `specs`
    are (name, url, script, connections, env); returns the summaries in the same order."""
    runs = [[] for _ in specs]
    for i in range(repeat):
        # Each round starts with the next scenario, so that none always runs first (or last)
        # in a round: a machine that speeds up or slows down within rounds favours no one.
        for k in range(len(specs)):
            j = (i + k) % len(specs)
            name, url, script, connections, env = specs[j]
            runs[j].append(run_once(server, url, script, connections, duration, env, i))
    return [summarize(results, spec[0], spec[3], spec_runs) for spec, spec_runs in zip(specs, runs)]


def pair_ratios(a, b, key):
    """Per round, b's `key` ÷ a's, for two summaries run interleaved."""
    return [y[key] / x[key] for x, y in zip(a["runs"], b["runs"]) if x[key] and y[key]]


def fmt_ms(v):
    return "-" if v is None else f"{v:.2f} ms"


def fmt_us(v):
    return "-" if v is None else f"{v:.0f} µs"


def uuid7(ms, counter):
    # 48-bit ms timestamp, version 7, 12 bits of counter, variant, 62 bits of counter/randomness.
    value = (ms << 80) | (0x7 << 76) | ((counter >> 62) & 0xFFF) << 64 | (0b10 << 62) | (counter & ((1 << 62) - 1))
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def seed_rows(count, phc):
    """Rows for bulk insert: ids are valid UUIDv7s in registration order, all sharing one hash."""
    base_ms = int(time.time() * 1000) - count
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")
    for i in range(count):
        name = f"seed{i:07d}"
        yield (uuid7(base_ms + i, i), name, name, f"{name}@example.com", f"{name}@example.com", phc, "user", now, now)


def mysql_cli(mysql_url):
    """The mysql command line for a mysql://user@host:port URL (no password)."""
    user_host = mysql_url[len("mysql://"):].split("/")[0]
    user, host = user_host.split("@")
    host, _, port = host.partition(":")
    return ["mysql", "-h", host, "-P", port or "3306", "-u", user.split(":")[0]]


def fresh_database(mysql_url, db):
    """Drops and creates database `db` on the MySQL server of `mysql_url`; its DATABASE_URL."""
    server_url = mysql_url.rstrip("/")
    sh(mysql_cli(server_url) + ["-e", f"DROP DATABASE IF EXISTS {db}; CREATE DATABASE {db} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"])
    return f"{server_url}/{db}"


def seed_mysql(mysql_url, database, count, phc):
    proc = subprocess.Popen(mysql_cli(mysql_url) + [database], stdin=subprocess.PIPE, text=True)
    batch = []

    def flush():
        values = ",".join("(" + ",".join(f"'{v}'" for v in row) + ")" for row in batch)
        proc.stdin.write(
            "INSERT INTO users (id, username, username_lower, email, email_lower, password_hash, role, registration_date, updated_at) VALUES "
            + values + ";\n"
        )
        batch.clear()

    proc.stdin.write("SET unique_checks=0; SET autocommit=0;\n")
    for row in seed_rows(count, phc):
        batch.append(row)
        if len(batch) == 5000:
            flush()
    if batch:
        flush()
    proc.stdin.write("COMMIT;\n")
    proc.stdin.close()
    if proc.wait() != 0:
        raise SystemExit("seeding MySQL failed")


def seed_sqlite(path, count, phc):
    import sqlite3

    conn = sqlite3.connect(path)
    conn.executemany(
        "INSERT INTO users (id, username, username_lower, email, email_lower, password_hash, role, registration_date, updated_at) VALUES (?,?,?,?,?,?,?,?,?)",
        seed_rows(count, phc),
    )
    conn.commit()
    conn.close()


def cursor_for(user_id):
    return base64.urlsafe_b64encode(json.dumps(user_id).encode()).decode().rstrip("=")


def run_backend(backend, args, workdir):
    results = []
    env = {}
    if backend == "mysql":
        db = "user_api_bench"
        server_url = args.mysql.rstrip("/")
        mysql_cmd = mysql_cli(server_url)
        prefix = f"bench{int(time.time())}:"
        env = {"DATABASE_URL": fresh_database(server_url, db), "REDIS_URL": args.redis, "REDIS_KEY_PREFIX": prefix}
    else:
        env = {"DATABASE_URL": "sqlite://data/users.db"}

    print(f"\n== {backend}", flush=True)
    server = Server(env, workdir)
    time.sleep(1)
    startup = {"ready_ms": server.ready_ms, "idle_rss_mib": rss_kib(server.proc.pid) / 1024}
    print(f"  ready after {startup['ready_ms']:.0f} ms, idle RSS {startup['idle_rss_mib']:.1f} MiB", flush=True)

    body = json.dumps({"query": "mutation($i: RegisterInput!) { register(input: $i) { accessToken } }", "variables": {"i": {"username": "bench", "email": "bench@example.com", "password": PASSWORD}}})
    status, text = http("POST", server.url + "/graphql", body)
    token = json.loads(text)["data"]["register"]["accessToken"]
    gql = server.url + "/graphql"
    d = args.duration

    want = set(args.scenarios.split(","))
    rest_status, _ = http("GET", server.url + "/users/me", token=token)
    if "rest" in want and rest_status != 200:
        print(f"  (REST /users/me answered {rest_status}: skipped)")
        want.discard("rest")
    if "apq" in want:
        # The document is kept by sending it once with its hash; then the hash alone is sent.
        status, text = http("POST", gql, APQ_REGISTER, token=token)
        assert status == 200 and "errors" not in json.loads(text), text
    for c in (32, 256):
        specs = []
        if "me" in want:
            specs.append(("GraphQL me", gql, "post.lua", c, {"BODY": ME_QUERY, "TOKEN": token}))
        if "rest" in want:
            specs.append(("REST GET /users/me", server.url + "/users/me", "get.lua", c, {"TOKEN": token}))
        if "apq" in want and c == 32:
            specs.append(("GraphQL me, persisted, by GET", gql + APQ_GET_QUERY, "get.lua", c, {"TOKEN": token}))
        interleaved(results, server, specs, d, args.repeat)

    login = None
    hashing = None
    if "login" in want:
        # Each login run is compared with the hash timed just before and just after it.
        hashes, runs = [hash_time()], []
        for i in range(args.repeat):
            print(f"  one hash: {hashes[-1]['ms']} ms; {hashes[-1]['parallel_rate']} hashes/s on every core at once", flush=True)
            runs.append(run_once(server, gql, "post.lua", 8, d, {"BODY": LOGIN_BODY}, i))
            hashes.append(hash_time())
        print(f"  one hash: {hashes[-1]['ms']} ms; {hashes[-1]['parallel_rate']} hashes/s on every core at once", flush=True)
        login = summarize(results, "login", 8, runs)
        cores = os.cpu_count() or 1
        around = [(a["ms"] + b["ms"]) / 2 for a, b in zip(hashes, hashes[1:]) if a["ms"] and b["ms"]]
        hashing = {
            "ms": median(h["ms"] for h in hashes),
            "parallel_rate": median(h["parallel_rate"] for h in hashes),
            "each_ms": [h["ms"] for h in hashes],
            "ratios": [r["rps"] / (cores / (ms / 1000)) for ms, r in zip(around, runs)],
        }

    if "flood" in want:
        flood_me(results, server, gql, token, d, args.repeat)
    if "register" in want:
        scenario(results, server, "register", gql, "register.lua", 8, d, {"RUN": str(int(time.time()) % 100000)}, args.repeat)
    if "pages" not in want:
        server.stop()
        return {"backend": backend, "startup": startup, "results": results, "login": login, "hashing": hashing, "pages": None}

    # Seed users directly (not through the API) for the pagination scenarios.
    server.stop()
    if backend == "mysql":
        phc = sh(mysql_cmd + ["-N", "-e", "SELECT password_hash FROM user_api_bench.users WHERE username='bench'"]).strip()
        seed_mysql(server_url, "user_api_bench", args.users, phc)
        page_id = sh(mysql_cmd + ["-N", "-e", f"SELECT id FROM user_api_bench.users ORDER BY id LIMIT 1 OFFSET {5000 * 20 - 1}"]).strip()
    else:
        import sqlite3

        path = os.path.join(workdir, "data", "users.db")
        conn = sqlite3.connect(path)
        phc = conn.execute("SELECT password_hash FROM users WHERE username='bench'").fetchone()[0]
        conn.close()
        seed_sqlite(path, args.users, phc)
        conn = sqlite3.connect(path)
        page_id = conn.execute(f"SELECT id FROM users ORDER BY id LIMIT 1 OFFSET {5000 * 20 - 1}").fetchone()[0]
        conn.close()
    print(f"  seeded {args.users} users", flush=True)
    server = Server(env, workdir)
    gql = server.url + "/graphql"
    status, text = http("POST", gql, LOGIN_BODY.replace("{ expiresIn }", "{ accessToken }"))
    token = json.loads(text)["data"]["login"]["accessToken"]
    first, deep = interleaved(results, server, [
        (f"users, first page ({args.users} users)", gql, "post.lua", 32, {"BODY": users_query(None), "TOKEN": token}),
        ("users, page 5,000", gql, "post.lua", 32, {"BODY": users_query(cursor_for(page_id)), "TOKEN": token}),
    ], d, args.repeat)
    server.stop()
    return {"backend": backend, "startup": startup, "results": results, "login": login, "hashing": hashing, "pages": (first, deep)}


def flood_me(results, server, gql, token, d, repeat):
    """`me` at c32 while a login flood runs in another wrk, each run after one without the
    flood, so that the two p99s compared meet the same moments of the machine."""
    me = {"BODY": ME_QUERY, "TOKEN": token}
    idle, flooded = [], []
    for i in range(repeat):
        idle.append(run_once(server, gql, "post.lua", 32, d, me, i))
        flood = subprocess.Popen(
            ["wrk", "-t1", "-c16", f"-d{d + 3}s", "-s", os.path.join(BENCH, "wrk", "post.lua"), gql],
            env={**os.environ, "BODY": LOGIN_BODY}, stdout=subprocess.DEVNULL,
        )
        time.sleep(2)
        flooded.append(run_once(server, gql, "post.lua", 32, d, me, i))
        flood.wait()
    summarize(results, "GraphQL me, in turn with the flood runs", 32, idle)
    summarize(results, "GraphQL me during a login flood", 32, flooded)


def hash_time():
    """The time of one argon2 hash alone (ms) and the hashes/s of every core hashing at once,
    from `cargo bench --bench hash`. Measured just before the login scenario, since this
    machine's speed drifts over minutes."""
    out = sh(["cargo", "bench", "-q", "--bench", "hash"], cwd=ROOT)
    one = re.search(r"([\d.]+) ms per hash", out)
    parallel = re.search(r"([\d.]+) hashes/s with", out)
    return {
        "ms": float(one.group(1)) if one else None,
        "parallel_rate": float(parallel.group(1)) if parallel else None,
    }


def machine():
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "")
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB, {platform.system()} {platform.release()}"


def write_results(args, runs, started):
    cores = os.cpu_count() or 1
    rev = sh(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT).strip()
    lines = [
        "# Benchmark results",
        "",
        f"Command: `{' '.join(['bench/run.py'] + sys.argv[1:])}`  ",
        f"Date: {started:%Y-%m-%d %H:%M} UTC; commit {rev}  ",
        f"Machine: {machine()}; wrk, the server, MariaDB and Redis share the cores.  ",
        f"Each scenario runs {args.repeat} × {args.duration} s with one wrk thread; req/s, p50 and p99 are the medians of the runs (each run's req/s in brackets); latencies are wrk's; peak RSS is the server's VmHWM, reset before each run, highest of the runs. Scenarios compared by a target run in turn (GraphQL and REST `me`; `me` with and without a login flood; the first and the deep page; each login run between two hash timings), and their ratios are medians of the rounds' ratios.",
        "",
    ]
    for run in runs:
        s = run["startup"]
        lines += [
            f"## {'MySQL + Redis' if run['backend'] == 'mysql' else 'embedded SQLite (sessions in SQLite)'}",
            "",
            f"Start to first 200 on /readyz: {s['ready_ms']:.0f} ms (migrations included). Idle RSS: {s['idle_rss_mib']:.1f} MiB.",
            "",
        ]
        hashing = run["hashing"]
        per_hash_ms = hashing and hashing["ms"]
        if per_hash_ms:
            limit = cores / (per_hash_ms / 1000)
            each = "/".join(f"{x:.2f}" for x in hashing["each_ms"])
            lines += [
                f"Timed before the first login run and after each: one argon2id hash (m=19 MiB, t=2, p=1) takes {per_hash_ms:.2f} ms (median; each: {each} ms; `cargo bench --bench hash`), so the hashing limit is {cores} cores ÷ {per_hash_ms:.2f} ms = **{limit:.0f} logins/s**; with every core hashing at once the hasher itself did {hashing['parallel_rate']:.0f} hashes/s (median).",
                "",
            ]
        lines += [
            "| scenario | connections | req/s (each run) | p50 | p99 | server CPU per answer | failed | peak RSS |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in run["results"]:
            each = "/".join(f"{x:.0f}" for x in r["each_rps"])
            lines.append(f"| {r['name']} | {r['connections']} | {r['rps']:.0f} ({each}) | {fmt_ms(r['p50'])} | {fmt_ms(r['p99'])} | {fmt_us(r.get('cpu_us'))} | {r['failed']} | {r['peak_rss_mib']:.1f} MiB |")
        lines.append("")
        by = {(r["name"], r["connections"]): r for r in run["results"]}
        checks = []
        gme, rme = by.get(("GraphQL me", 32)), by.get(("REST GET /users/me", 32))
        if gme and rme:
            ratios = pair_ratios(rme, gme, "rps")
            checks.append(f"GraphQL `me` ÷ REST `/users/me` at c32, req/s: {median(ratios):.0%} (target ≥ 90%; each round: {'/'.join(f'{x:.0%}' for x in ratios)})")
        apq = by.get(("GraphQL me, persisted, by GET", 32))
        if gme and apq:
            ratios = pair_ratios(gme, apq, "rps")
            checks.append(f"`me` by persisted-query GET ÷ by POST at c32, req/s: {median(ratios):.0%} (target ≥ 100%; each round: {'/'.join(f'{x:.0%}' for x in ratios)})")
            cpu = pair_ratios(apq, gme, "cpu_us")
            if cpu:
                checks.append(f"server CPU per answer, by POST ÷ by persisted-query GET at c32: {median(cpu):.0%} (above 100%: the GET costs the server less; each round: {'/'.join(f'{x:.0%}' for x in cpu)})")
        if gme:
            checks.append(f"`me` p99 at c32: {fmt_ms(gme['p99'])} (target ≤ 10 ms)")
        calm, flood = by.get(("GraphQL me, in turn with the flood runs", 32)), by.get(("GraphQL me during a login flood", 32))
        if calm and flood:
            ratios = pair_ratios(calm, flood, "p99")
            checks.append(f"`me` p99 during the login flood ÷ p99 without it: {median(ratios):.2f}× (target ≤ 2×; each round: {'/'.join(f'{x:.2f}' for x in ratios)})")
        first, deep = run["pages"] or (None, None)
        if first and deep:
            ratios = pair_ratios(first, deep, "p50")
            checks.append(f"page 5,000 ÷ first page, p50: {median(ratios):.2f}× (target ≤ 1.2×; each round: {'/'.join(f'{x:.2f}' for x in ratios)}); req/s {deep['rps']:.0f} vs {first['rps']:.0f}")
        if hashing and hashing.get("ratios"):
            ratios = hashing["ratios"]
            checks.append(f"login ÷ hashing limit: {median(ratios):.0%} (target ≥ 85%; each run against the mean of the hashes timed just before and after it: {'/'.join(f'{x:.0%}' for x in ratios)})")
        busy = [r["peak_rss_mib"] for r in run["results"] if r["connections"] == 256]
        checks.append(f"idle RSS {s['idle_rss_mib']:.1f} MiB (target ≤ 30 MiB)" + (f"; peak RSS at c256 {max(busy):.1f} MiB (target ≤ 150 MiB)" if busy else ""))
        lines += ["Against the targets:", ""] + [f"- {c}" for c in checks] + [""]
    # Sections written by bench/compare.py, bench/search.py, bench/subscriptions.py, bench/instructions.py and bench/cluster.py are kept: each records its own
    # command and date.
    if os.path.exists(args.out):
        kept = ["## " + b for b in open(args.out).read().split("\n## ")[1:]
                if b.startswith(("Before and after", "Filtered user lists", "Subscriptions", "Totals over", "Side by side", "Instructions per request", "Redis Cluster against"))]
        lines += [block.rstrip("\n") + "\n" for block in kept]
    with open(args.out, "w") as f:
        f.write("\n".join(lines))
    print(f"\nwrote {args.out}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backend", choices=["mysql", "sqlite", "both"], default="both")
    p.add_argument("--duration", type=int, default=10, help="seconds per run of a scenario")
    p.add_argument("--repeat", type=int, default=3, help="runs per scenario; the medians are reported")
    p.add_argument("--users", type=int, default=1_000_000, help="users seeded for the pagination scenarios")
    p.add_argument("--mysql", default="mysql://root@127.0.0.1:3306")
    p.add_argument("--redis", default="redis://127.0.0.1:6379")
    p.add_argument("--out", default=os.path.join(BENCH, "RESULTS.md"), help="where to write the results")
    p.add_argument("--scenarios", default="me,rest,apq,login,flood,register,pages",
                   help="comma-separated subset of: me, rest, apq (me as a persisted query by GET), login, flood, register, pages")
    args = p.parse_args()
    started = datetime.datetime.now(datetime.timezone.utc)
    ensure_wrk()
    print("building the release binary", flush=True)
    subprocess.run(["cargo", "build", "--release", "-q"], cwd=ROOT, check=True)
    # Compiles the hashing benchmark now, so that measuring it later takes a second.
    subprocess.run(["cargo", "bench", "-q", "--bench", "hash", "--no-run"], cwd=ROOT, check=True)
    runs = []
    for backend in (["mysql", "sqlite"] if args.backend == "both" else [args.backend]):
        with tempfile.TemporaryDirectory() as workdir:
            runs.append(run_backend(backend, args, workdir))
    write_results(args, runs, started)


if __name__ == "__main__":
    main()
