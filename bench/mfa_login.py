#!/usr/bin/env python3
"""Login with a second factor (TOTP) against login with a password alone, on one release server,
measured two ways in every round:

- against the hashing limit (the target): more clients than hash slots (--saturate-clients,
  default 4 × the hash slots), so that while some clients make their second request the slots
  hash for others and never idle; sign-ins/s is then bounded by the server's CPU, and what the
  second step costs is its CPU (and any contention), not its latency. Reported: MFA ÷ plain
  sign-ins/s (the throughput cost) and server CPU per sign-in, MFA ÷ plain (the work cost);
- the latency view: as many clients as hash slots (the server's HASH_CONCURRENCY = cores), so
  that a slot idles while its client makes the second request: the second step's latency
  counts in full. Reported: MFA sign-in mean ÷ plain login mean.

Each phase is N plain logins (`login`, users without MFA) or N full two-step sign-ins
(`login` → MFA_REQUIRED → `loginSecondFactor` with a fresh RFC 6238 code, each a different MFA
user); plain and MFA run in alternating order. The password check is the same argon2 hash in
both; the second step should cost none.

    bench/mfa_login.py                         # embedded SQLite, 5 rounds
    bench/mfa_login.py --mysql                 # and MySQL + Redis (127.0.0.1:3306, :6379)
    bench/mfa_login.py --logins 120 --saturate-logins 200 --saturate-clients 8 --rounds 5
    bench/mfa_login.py --mysql --api-core 0    # the API alone on core 0, the rest on the others

With --api-core, the server runs on that one core (HASH_CONCURRENCY = 1) and everything else
(MariaDB, Redis, this client) on the other cores, as when the database has a machine of its
own: sign-ins/s is then bounded by the API's core alone, and what the second step costs the
database no longer comes off the hashing.

The server accepts each TOTP step at most once per user, and no step older than the last one it
accepted: every MFA user here signs in once (with the current step, or the next one when the
enrolment used the current one), and each phase of each round has users of its own (enrolment
costs two hashes a user: registration and startTotpEnrollment's password check).

The server runs with every rate limit off (RATE_LIMIT_*, read from src/config/limits.rs, the
per-user MFA failure limit included): one address signs in thousands of times.

Prints a Markdown section for bench/RESULTS.md.
"""

import argparse
import base64
import hashlib
import hmac
import os
import re
import shlex
import struct
import subprocess
import sys
import threading
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "reliability"))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from common import BIN, PASSWORD, Client, Server, error_code, loadavg, machine, register, tmpdir  # noqa: E402
import run  # noqa: E402

LOGIN = "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { accessToken } }"
SECOND = "mutation($t: String!, $c: String!) { loginSecondFactor(mfaToken: $t, code: $c) { accessToken } }"
START = "mutation($p: String!) { startTotpEnrollment(currentPassword: $p) { secret otpauthUri } }"
CONFIRM = "mutation($c: String!) { confirmTotpEnrollment(code: $c) }"
ME = "{ me { id username } }"
STEP = 30

# --- TOTP (RFC 6238 over RFC 4226: HMAC-SHA-1, 6 digits, 30 s steps) -------------------------


def b32_key(secret):
    secret = secret.replace(" ", "").upper()
    return base64.b32decode(secret + "=" * (-len(secret) % 8))


def totp(key, step):
    mac = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    value = struct.unpack(">I", mac[offset:offset + 4])[0] & 0x7FFFFFFF
    return f"{value % 1_000_000:06d}"


def current_step():
    return int(time.time()) // STEP


# --- users ---------------------------------------------------------------------------------

PROBLEMS = []  # (what, exact answer), the first few of each kind
_problems_lock = threading.Lock()


def problem(what, status, body):
    with _problems_lock:
        if sum(1 for w, _ in PROBLEMS if w == what) < 3:
            PROBLEMS.append((what, f"HTTP {status} {body}"))
    print(f"  ! {what}: HTTP {status} {body}", flush=True)


def enrol(client, name):
    """Registers `name`, enrols TOTP with a code of the current step; (key, step used)."""
    token = register(client, name)
    status, body = client.gql(START, {"p": PASSWORD}, token)
    data = (body.get("data") or {}).get("startTotpEnrollment")
    if status != 200 or not data:
        raise RuntimeError(f"startTotpEnrollment {name}: HTTP {status} {body}")
    uri = urllib.parse.urlparse(data["otpauthUri"])
    params = dict(urllib.parse.parse_qsl(uri.query))
    if (params.get("algorithm", "SHA1").upper(), params.get("digits", "6"), params.get("period", "30")) != ("SHA1", "6", "30"):
        raise RuntimeError(f"unexpected TOTP parameters in {data['otpauthUri']}")
    key = b32_key(data["secret"])
    if b32_key(params["secret"]) != key:
        raise RuntimeError(f"the secret and the otpauth URI's differ: {data}")
    step = current_step()
    status, body = client.gql(CONFIRM, {"c": totp(key, step)}, token)
    codes = (body.get("data") or {}).get("confirmTotpEnrollment")
    if status != 200 or not codes or len(codes) != 10:
        raise RuntimeError(f"confirmTotpEnrollment {name}: HTTP {status} {body}")
    return {"name": name, "key": key, "last_step": step}


def in_parallel(items, fn, threads, url):
    """fn(client, item) for every item on `threads` threads with a client each; the results in
    order."""
    out = [None] * len(items)
    lock = threading.Lock()
    state = {"next": 0, "error": None}

    def work():
        client = Client(url, timeout=30)
        while True:
            with lock:
                i = state["next"]
                state["next"] += 1
                if i >= len(items) or state["error"]:
                    break
            try:
                out[i] = fn(client, items[i])
            except Exception as e:  # noqa: BLE001 - reported after the join
                state["error"] = e
        client.close()

    pool = [threading.Thread(target=work) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    if state["error"]:
        raise state["error"]
    return out


# --- the two ways in -----------------------------------------------------------------------


def plain_login(client, user):
    t0 = time.perf_counter()
    status, body = client.gql(LOGIN, {"u": user, "p": PASSWORD})
    t1 = time.perf_counter()
    if status != 200 or not ((body.get("data") or {}).get("login") or {}).get("accessToken"):
        problem("plain login", status, body)
        return None
    return {"total": t1 - t0}


def mfa_login(client, user):
    t0 = time.perf_counter()
    status, body = client.gql(LOGIN, {"u": user["name"], "p": PASSWORD})
    t1 = time.perf_counter()
    errors = body.get("errors") or []
    ext = (errors[0].get("extensions") or {}) if errors else {}
    if status != 200 or error_code(body) != "MFA_REQUIRED" or not ext.get("mfaToken"):
        problem("login of an MFA user (expected MFA_REQUIRED)", status, body)
        return None
    # A step the server has not accepted for this user yet: the current one, or the next
    # (accepted too) when the enrolment used the current one.
    step = max(current_step(), user["last_step"] + 1)
    code = totp(user["key"], step)
    t2 = time.perf_counter()
    status, body = client.gql(SECOND, {"t": ext["mfaToken"], "c": code})
    t3 = time.perf_counter()
    token = ((body.get("data") or {}).get("loginSecondFactor") or {}).get("accessToken")
    if status != 200 or not token:
        problem("loginSecondFactor", status, body)
        return None
    user["last_step"] = step
    user["token"] = token
    return {"total": (t1 - t0) + (t3 - t2), "first": t1 - t0, "second": t3 - t2}


DB_PROCESSES = ("mariadbd", "mysqld", "redis-server")


def db_pids():
    """The database and Redis servers on this machine (they share its cores with the API)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm") as f:
                    if f.read().strip() in DB_PROCESSES:
                        pids.append(int(entry))
            except OSError:
                pass
    return pids


def db_cpu(pids):
    total = 0.0
    for pid in pids:
        try:
            total += run.cpu_seconds(pid)
        except OSError:
            pass
    return total


def machine_busy():
    """CPU seconds all cores spent busy so far (user, nice, system, irq, softirq)."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    return sum(fields[i] for i in (0, 1, 2, 5, 6)) / os.sysconf("SC_CLK_TCK")


def api_slots(args):
    """The server's hash slots: its cores (HASH_CONCURRENCY's default), or 1 on --api-core."""
    return 1 if args.api_core is not None else (os.cpu_count() or 1)


def on_one_core(core, workdir):
    """A launcher: the release server pinned to `core` (taskset execs it: same process)."""
    path = os.path.join(workdir, "on-one-core.sh")
    with open(path, "w") as f:
        f.write(f"#!/bin/sh\nexec taskset -c {core} {shlex.quote(BIN)} \"$@\"\n")
    os.chmod(path, 0o755)
    return path


def pin_the_rest(core):
    """Moves this client and the database and Redis servers off `core`; returns the undo."""
    everything = set(range(os.cpu_count() or 1))
    others = everything - {core}
    cores = ",".join(str(c) for c in sorted(others))
    os.sched_setaffinity(0, others)
    pids = db_pids()
    for pid in pids:
        subprocess.run(["taskset", "-a", "-p", "-c", cores, str(pid)], capture_output=True)

    def undo():
        os.sched_setaffinity(0, everything)
        every = ",".join(str(c) for c in sorted(everything))
        for pid in pids:
            subprocess.run(["taskset", "-a", "-p", "-c", every, str(pid)], capture_output=True)
    return undo


def phase(server, fn, jobs, concurrency, slots):
    """Runs fn(client, job) for every job on `concurrency` threads, each with a keep-alive
    connection opened beforehand; wall time, the server's CPU time, and each sign-in's times."""
    clients = [Client(server.url, timeout=30) for _ in range(concurrency)]
    for c in clients:
        c.request("GET", "/readyz")
    lock = threading.Lock()
    state = {"next": 0}
    results = []
    barrier = threading.Barrier(concurrency + 1)

    def work(client):
        barrier.wait()
        mine = []
        while True:
            with lock:
                i = state["next"]
                state["next"] += 1
            if i >= len(jobs):
                break
            mine.append(fn(client, jobs[i]))
        with lock:
            results.extend(mine)

    pool = [threading.Thread(target=work, args=(c,)) for c in clients]
    for t in pool:
        t.start()
    dbs = db_pids()
    cpu = run.cpu_seconds(server.pid)
    dbcpu = db_cpu(dbs)
    allcpu = machine_busy()
    own = time.process_time()
    barrier.wait()
    started = time.perf_counter()
    for t in pool:
        t.join()
    wall = time.perf_counter() - started
    cpu = run.cpu_seconds(server.pid) - cpu
    dbcpu = db_cpu(dbs) - dbcpu
    allcpu = machine_busy() - allcpu
    own = time.process_time() - own
    for c in clients:
        c.close()
    ok = [r for r in results if r]
    mean = lambda key: sum(r[key] for r in ok) / len(ok) if ok else None  # noqa: E731
    return {
        "n": len(jobs),
        "ok": len(ok),
        "failed": len(jobs) - len(ok),
        "rate": len(ok) / wall,
        "wall": wall,
        "mean": mean("total"),
        "first": mean("first") if ok and "first" in ok[0] else None,
        "second": mean("second") if ok and "second" in ok[0] else None,
        "cpu": cpu / len(jobs),
        "busy": cpu / wall / slots,
        "db_cpu": dbcpu / len(jobs),
        "all_cpu": allcpu / len(jobs),
        "all_busy": allcpu / wall / (os.cpu_count() or 1),
        "client_cpu": own / len(jobs),
    }


# --- one backend ---------------------------------------------------------------------------


def rate_limits_off():
    """Every RATE_LIMIT_* setting the server has, off: common.Server turns off the ones it knows
    by name, and a limit added since (like RATE_LIMIT_MFA_FAILURES_PER_USER) would be on."""
    names = {"RATE_LIMIT_MFA_FAILURES_PER_USER"}
    try:
        with open(os.path.join(ROOT, "src", "config", "limits.rs")) as f:
            names |= set(re.findall(r'env = "(RATE_LIMIT_[A-Z0-9_]+)"', f.read()))
    except OSError:
        pass
    return {name: "off" for name in sorted(names)}


def bench(backend, env, args, workdir):
    n, conc, rounds = args.logins, args.concurrency, args.rounds
    sat_n, sat_conc = args.saturate_logins, args.saturate_clients
    print(f"\n== {backend}", flush=True)
    slots = api_slots(args)
    binary, undo = None, None
    if args.api_core is not None:
        env = {**env, "HASH_CONCURRENCY": "1"}
        binary = on_one_core(args.api_core, workdir)
        undo = pin_the_rest(args.api_core)
    try:
        server = Server({**rate_limits_off(), **env}, workdir, name="mfa-" + backend.split()[0].lower(), binary=binary)
    except BaseException:
        if undo:
            undo()
        raise
    try:
        t0 = time.monotonic()
        plain_users = [f"plain{i:04d}" for i in range(max(n, sat_n))]
        in_parallel(plain_users, register, sat_conc, server.url)
        warm = 2 * conc
        warm_sat = 2 * sat_conc
        # Per round: the latency view's users, then the saturated phase's; last, the warm-up's.
        sets = []
        for r in range(rounds):
            sets.append((in_parallel([f"mfa{r}l{i:04d}" for i in range(n)], enrol, sat_conc, server.url),
                         in_parallel([f"mfa{r}s{i:04d}" for i in range(sat_n)], enrol, sat_conc, server.url)))
        warm_set = in_parallel([f"mfaw{i:04d}" for i in range(warm + warm_sat)], enrol, sat_conc, server.url)
        setup_s = time.monotonic() - t0
        mfa_users = rounds * (n + sat_n) + warm + warm_sat
        print(f"  {len(plain_users)} plain users and {mfa_users} MFA users ready in {setup_s:.1f} s", flush=True)

        # Warm-up: connections, caches, the server's pools, at both concurrencies.
        phase(server, plain_login, plain_users[:warm], conc, slots)
        phase(server, mfa_login, warm_set[:warm], conc, slots)
        phase(server, plain_login, plain_users[:warm_sat], sat_conc, slots)
        phase(server, mfa_login, warm_set[warm:], sat_conc, slots)

        rows = []
        for r in range(rounds):
            # Plain and MFA alternate in each view from round to round, and the saturated pair
            # runs in the opposite order to the latency pair (ABBA within a round).
            lat_order = ("plain", "mfa") if r % 2 == 0 else ("mfa", "plain")
            sat_order = tuple(reversed(lat_order))
            row = {"lat_order": lat_order, "sat_order": sat_order}
            lat_users, sat_users = sets[r]
            for which in lat_order:
                if which == "plain":
                    row["lp"] = phase(server, plain_login, plain_users[:n], conc, slots)
                else:
                    row["lm"] = phase(server, mfa_login, lat_users, conc, slots)
            for which in sat_order:
                if which == "plain":
                    row["sp"] = phase(server, plain_login, plain_users[:sat_n], sat_conc, slots)
                else:
                    row["sm"] = phase(server, mfa_login, sat_users, sat_conc, slots)
            lp, lm, sp, sm = row["lp"], row["lm"], row["sp"], row["sm"]
            # Latency view: MFA sign-in time ÷ plain login time.
            row["lat_ratio"] = lm["mean"] / lp["mean"] if lp["mean"] and lm["mean"] else None
            # At the hashing limit: MFA ÷ plain sign-ins/s, and the server's CPU per sign-in.
            row["thr_ratio"] = sm["rate"] / sp["rate"] if sp["rate"] else None
            row["cpu_ratio"] = sm["cpu"] / sp["cpu"] if sp["cpu"] else None
            rows.append(row)
            print(f"  round {r + 1}: saturated ({sat_conc} clients, {' then '.join(sat_order)}): plain {sp['rate']:.1f}/s "
                  f"CPU {sp['cpu'] * 1000:.1f} ms busy {sp['busy']:.0%}; MFA {sm['rate']:.1f}/s CPU {sm['cpu'] * 1000:.1f} ms "
                  f"busy {sm['busy']:.0%}; rate MFA÷plain {row['thr_ratio']:.3f}, CPU MFA÷plain {row['cpu_ratio']:.3f} | "
                  f"latency view ({conc} clients, {' then '.join(lat_order)}): plain {lp['mean'] * 1000:.1f} ms, "
                  f"MFA {lm['mean'] * 1000:.1f} ms (2nd step {lm['second'] * 1000:.1f} ms), ratio {row['lat_ratio']:.3f}; "
                  f"failed {lp['failed'] + lm['failed'] + sp['failed'] + sm['failed']}", flush=True)

        # The tokens work, and a code is not taken twice (one more login, one more hash).
        user = next(u for pair in sets for users in pair for u in users if "token" in u)
        c = Client(server.url)
        status, body = c.gql(ME, token=user["token"])
        token_ok = status == 200 and ((body.get("data") or {}).get("me") or {}).get("username") == user["name"]
        if not token_ok:
            problem("me with the token of loginSecondFactor", status, body)
        status, body = c.gql(LOGIN, {"u": user["name"], "p": PASSWORD})
        mfa_token = ((body.get("errors") or [{}])[0].get("extensions") or {}).get("mfaToken")
        status, body = c.gql(SECOND, {"t": mfa_token, "c": totp(user["key"], user["last_step"])})
        replay_refused = bool(body.get("errors")) and not (body.get("data") or {}).get("loginSecondFactor")
        replay_answer = error_code(body)
        if not replay_refused:
            problem("the same TOTP code a second time (expected a refusal)", status, body)
        c.close()
        total_s = time.monotonic() - t0
    finally:
        server.stop()
        if undo:
            undo()
    return {"backend": backend, "rows": rows, "setup_s": setup_s, "total_s": total_s, "mfa_users": mfa_users,
            "external_db": not env.get("DATABASE_URL", "").startswith("sqlite"),
            "token_ok": token_ok, "replay_refused": replay_refused, "replay_answer": replay_answer}


def mysql_env(args):
    db = f"user_api_bench_mfa_{os.getpid()}_{int(time.time())}"
    prefix = f"bench-mfa-{os.getpid()}-{int(time.time())}:"
    url = run.fresh_database(args.mysql_url, db)
    return db, prefix, {"DATABASE_URL": url, "REDIS_URL": args.redis_url, "REDIS_KEY_PREFIX": prefix}


def mysql_cleanup(args, db, prefix):
    try:
        run.sh(run.mysql_cli(args.mysql_url.rstrip("/")) + ["-e", f"DROP DATABASE IF EXISTS {db}"])
    except subprocess.CalledProcessError as e:
        print(f"  (dropping {db} failed: {e.stderr.strip()})", flush=True)
    host, port = args.redis_url.split("://", 1)[1].split("/")[0].split(":")
    cli = ["redis-cli", "-h", host, "-p", port]
    keys = subprocess.run(cli + ["--scan", "--pattern", prefix + "*"], capture_output=True, text=True).stdout.split()
    for i in range(0, len(keys), 500):
        subprocess.run(cli + ["DEL", *keys[i:i + 500]], capture_output=True)


# --- report --------------------------------------------------------------------------------


def ms(v):
    return "–" if v is None else f"{v * 1000:.1f} ms"


def pct(v):
    return "–" if v is None else f"{v:+.1%}"


def section(results, args, rev, load_start):
    cores = api_slots(args)
    if args.api_core is not None:
        placement = (f"the server alone on core {args.api_core} (`HASH_CONCURRENCY` = 1 hash slot, every `RATE_LIMIT_*` "
                     f"off), MariaDB, Redis and this Python client on the other cores, as with a database on a machine of "
                     f"its own; the machine is shared")
        sharing = (f"The API has its core to itself and the hashing threads run under `SCHED_IDLE`, so the API's own "
                   f"work comes off the hashing, and the other processes' does not: the throughput cost counts the API's "
                   f"part. ")
    else:
        placement = (f"the server (`HASH_CONCURRENCY` = cores = {cores} hash slots, every `RATE_LIMIT_*` off) and this "
                     f"Python client share the cores, and the machine is shared")
        sharing = (f"Everything shares the {cores} cores and the hashing threads run under `SCHED_IDLE`, so all of that "
                   f"work comes off the hashing: the throughput cost counts it all, the API's CPU ratio only the "
                   f"server's part. ")
    command = " ".join(["bench/mfa_login.py", shlex.join(sys.argv[1:])]).strip()
    out = ["## Login with a second factor (bench/mfa_login.py)", ""]
    out.append(f"Command: `{command}`  ")
    out.append(
        f"Commit {rev}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Machine: {machine()}; "
        f"{placement} (load average {load_start} at the start, {loadavg()} at the end), "
        f"so absolute rates are noisy. Each round runs two views, each a phase of plain logins (`login`, users without MFA) "
        f"and a phase of two-step sign-ins (`login` → `MFA_REQUIRED` → `loginSecondFactor` with a fresh TOTP code, each "
        f"a different MFA user), plain and MFA in alternating order:")
    out.append("")
    out.append(
        f"- **against the hashing limit** (the target): {args.saturate_logins} sign-ins per phase from "
        f"{args.saturate_clients} clients, {args.saturate_clients / cores:g} × the hash slots, so the "
        f"slots keep hashing for other clients while some make their second request: sign-ins/s is bounded by the server's "
        f"CPU. Throughput cost = MFA ÷ plain sign-ins/s (added = plain ÷ MFA − 1: the extra capacity one MFA sign-in takes); "
        f"work cost = server CPU per sign-in, MFA ÷ plain (the process's CPU time over the phase ÷ sign-ins);")
    out.append(
        f"- **latency view**: {args.logins} sign-ins per phase from {args.concurrency} clients (= hash slots), so a slot "
        f"idles while its client makes the second request; ratio = MFA sign-in mean (both requests) ÷ plain login mean.")
    out.append("")
    for res in results:
        rows = res["rows"]
        med = lambda f: run.median([f(r) for r in rows])  # noqa: E731
        out.append(f"**{res['backend']}** ({res['mfa_users']} MFA users registered and enrolled in {res['setup_s']:.0f} s; "
                   f"{res['total_s']:.0f} s in all):")
        out.append("")
        out.append(f"Against the hashing limit ({args.saturate_clients} clients):")
        out.append("")
        out.append("| round (first) | plain sign-ins/s | MFA sign-ins/s | MFA ÷ plain /s | added | plain mean | MFA mean (2nd step) | "
                   "server CPU / sign-in, plain / MFA | MFA ÷ plain CPU | added | server CPU use plain / MFA | failed |")
        out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for i, row in enumerate(rows, 1):
            p, m = row["sp"], row["sm"]
            out.append(f"| {i} ({row['sat_order'][0]}) | {p['rate']:.1f} | {m['rate']:.1f} | {row['thr_ratio']:.3f} | "
                       f"{pct(1 / row['thr_ratio'] - 1)} | {ms(p['mean'])} | {ms(m['mean'])} ({ms(m['second'])}) | "
                       f"{ms(p['cpu'])} / {ms(m['cpu'])} | {row['cpu_ratio']:.3f} | {pct(row['cpu_ratio'] - 1)} | "
                       f"{p['busy']:.0%} / {m['busy']:.0%} | {p['failed'] + m['failed']} |")
        thr = med(lambda r: r["thr_ratio"])
        cpu = med(lambda r: r["cpu_ratio"])
        out.append(f"| **median** | {med(lambda r: r['sp']['rate']):.1f} | {med(lambda r: r['sm']['rate']):.1f} | **{thr:.3f}** | "
                   f"**{pct(1 / thr - 1)}** | {ms(med(lambda r: r['sp']['mean']))} | {ms(med(lambda r: r['sm']['mean']))} "
                   f"({ms(med(lambda r: r['sm']['second']))}) | {ms(med(lambda r: r['sp']['cpu']))} / {ms(med(lambda r: r['sm']['cpu']))} | "
                   f"**{cpu:.3f}** | **{pct(cpu - 1)}** | {med(lambda r: r['sp']['busy']):.0%} / {med(lambda r: r['sm']['busy']):.0%} | "
                   f"{sum(r['sp']['failed'] + r['sm']['failed'] for r in rows)} |")
        out.append("")
        out.append(f"Where the CPU per sign-in went against the hashing limit (medians over the rounds, “added” the median "
                   f"of each round's difference; the whole machine = its busy time over all cores ÷ sign-ins, whoever spent it):")
        out.append("")
        out.append("| CPU per sign-in | plain | MFA | added | added % of the plain login's machine CPU |")
        out.append("|---|---:|---:|---:|---:|")
        base = med(lambda r: r["sp"]["all_cpu"])
        parts = [("the API server (user-api)", "cpu")]
        if res["external_db"]:
            parts.append(("MariaDB + Redis", "db_cpu"))
        parts += [("this Python client", "client_cpu"), ("the whole machine", "all_cpu")]
        for label, key in parts:
            p_, m_ = med(lambda r: r["sp"][key]), med(lambda r: r["sm"][key])
            d = med(lambda r: r["sm"][key] - r["sp"][key])
            out.append(f"| {label} | {ms(p_)} | {ms(m_)} | {d * 1000:+.1f} ms | {pct(d / base) if base else '–'} |")
        out.append(f"| machine busy (all cores) | {med(lambda r: r['sp']['all_busy']):.0%} | {med(lambda r: r['sm']['all_busy']):.0%} | | |")
        out.append("")
        out.append(f"Latency view ({args.concurrency} clients):")
        out.append("")
        out.append("| round (first) | plain logins/s | plain mean | MFA sign-ins/s | MFA mean | of it: 1st step | 2nd step | "
                   "server CPU plain / MFA | MFA ÷ plain time | added | failed |")
        out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for i, row in enumerate(rows, 1):
            p, m = row["lp"], row["lm"]
            out.append(f"| {i} ({row['lat_order'][0]}) | {p['rate']:.1f} | {ms(p['mean'])} | {m['rate']:.1f} | {ms(m['mean'])} | "
                       f"{ms(m['first'])} | {ms(m['second'])} | {ms(p['cpu'])} / {ms(m['cpu'])} | {row['lat_ratio']:.3f} | "
                       f"{pct(row['lat_ratio'] - 1)} | {p['failed'] + m['failed']} |")
        lat = med(lambda r: r["lat_ratio"])
        out.append(f"| **median** | {med(lambda r: r['lp']['rate']):.1f} | {ms(med(lambda r: r['lp']['mean']))} | "
                   f"{med(lambda r: r['lm']['rate']):.1f} | {ms(med(lambda r: r['lm']['mean']))} | "
                   f"{ms(med(lambda r: r['lm']['first']))} | {ms(med(lambda r: r['lm']['second']))} | {ms(med(lambda r: r['lp']['cpu']))} / "
                   f"{ms(med(lambda r: r['lm']['cpu']))} | **{lat:.3f}** | **{pct(lat - 1)}** | "
                   f"{sum(r['lp']['failed'] + r['lm']['failed'] for r in rows)} |")
        out.append("")

        thr_added = 1 / thr - 1
        cpu_added = cpu - 1
        cpu_ms = med(lambda r: r["sm"]["cpu"] - r["sp"]["cpu"])
        plain_cpu = med(lambda r: r["sp"]["cpu"])
        hashless = cpu_ms < plain_cpu / 2
        all_ratio = med(lambda r: r["sm"]["all_cpu"] / r["sp"]["all_cpu"])
        all_ms = med(lambda r: r["sm"]["all_cpu"] - r["sp"]["all_cpu"])
        db_ms = med(lambda r: r["sm"]["db_cpu"] - r["sp"]["db_cpu"])
        each_thr = "/".join(f"{r['thr_ratio']:.3f}" for r in rows)
        each_cpu = "/".join(f"{r['cpu_ratio']:.3f}" for r in rows)
        each_lat = "/".join(pct(r["lat_ratio"] - 1) for r in rows)
        met = lambda v: "under" if v < 0.10 else "**not** under"  # noqa: E731
        client = (med(lambda r: r["sp"]["client_cpu"]), med(lambda r: r["sm"]["client_cpu"]))
        second, first, plain = (med(lambda r: r["lm"]["second"]), med(lambda r: r["lm"]["first"]),
                                med(lambda r: r["lp"]["mean"]))
        text = (
            f"Against the hashing limit, MFA sign-ins/s ÷ plain logins/s was **{thr:.3f}** (median of {len(rows)} rounds: "
            f"{each_thr}): each MFA sign-in takes {pct(thr_added)} of the capacity a plain login takes ({1 - thr:.1%} fewer "
            f"sign-ins/s), {met(thr_added)} the 10 % target. The server's CPU per sign-in, MFA ÷ plain, was **{cpu:.3f}** "
            f"({each_cpu}): the second step added {cpu_ms * 1000:.1f} ms of CPU against {plain_cpu * 1000:.1f} ms for a "
            f"whole plain login (nearly all of it the argon2 hash), {pct(cpu_added)}, {met(cpu_added)} the target: "
            + ("it computes no hash. " if hashless else "**as much as a hash**. ")
            + f"On the whole machine, CPU per sign-in MFA ÷ plain was {all_ratio:.3f} ({pct(all_ratio - 1)}): of the added "
            f"{all_ms * 1000:.1f} ms, the API server {cpu_ms * 1000:+.1f} ms"
            + (f", MariaDB + Redis {db_ms * 1000:+.1f} ms" if res["external_db"] else "")
            + f", this Python client {(client[1] - client[0]) * 1000:+.1f} ms ({client[0] * 1000:.1f} / {client[1] * 1000:.1f} ms "
            f"per plain / MFA sign-in). " + sharing +
            f"In the latency view (as many clients as slots) a full MFA sign-in took {pct(lat - 1)} the time of a plain "
            f"login (median; {each_lat}), {met(lat - 1)} 10 %: there a hash slot idles while its client makes the second "
            f"request, so the second step's latency ({ms(second)}: its statements and commits and one more HTTP round "
            f"trip) counts in full against a login of {ms(plain)}; the password step of an MFA user took {ms(first)}"
            + (", as long as a plain login. " if abs(first / plain - 1) < 0.05 else f", {first / plain - 1:+.0%} against a plain login. ")
            + f"Tokens from `loginSecondFactor` work (`me`): {'yes' if res['token_ok'] else '**no**'}; the same code sent "
            f"again is refused: {'yes (' + str(res['replay_answer']) + ')' if res['replay_refused'] else '**no**'}.")
        out.append(text)
        out.append("")
    if PROBLEMS:
        out.append("Unexpected answers (the first of each kind):")
        out.append("")
        out += [f"- {what}: `{answer}`" for what, answer in PROBLEMS]
        out.append("")
    return "\n".join(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--logins", type=int, default=120, help="sign-ins per phase and round, latency view (default 120)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds, each all four phases (default 5)")
    parser.add_argument("--concurrency", type=int, default=None,
                        help="clients in the latency view (default: the server's hash slots)")
    parser.add_argument("--saturate-clients", type=int, default=None,
                        help="clients against the hashing limit (default: 4 × --concurrency, 8 on 2 cores)")
    parser.add_argument("--saturate-logins", type=int, default=200,
                        help="sign-ins per phase and round against the hashing limit (default 200)")
    parser.add_argument("--mysql", action="store_true", help="also on MySQL + Redis (after SQLite)")
    parser.add_argument("--mysql-url", default="mysql://root@127.0.0.1:3306")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379")
    parser.add_argument("--api-core", type=int, default=None, metavar="N",
                        help="run the server alone on core N (one hash slot), everything else on the other cores")
    args = parser.parse_args()
    cpus = os.cpu_count() or 1
    if args.api_core is not None and not (cpus > 1 and 0 <= args.api_core < cpus):
        parser.error("--api-core needs a core of this machine and at least one other")
    if args.concurrency is None:
        args.concurrency = api_slots(args)
    if args.saturate_clients is None:
        args.saturate_clients = 4 * args.concurrency
    rev = run.sh(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"]).strip()
    load_start = loadavg()
    results = [bench("SQLite (embedded, the default)", {"DATABASE_URL": "sqlite://data/users.db"}, args, tmpdir("mfa-bench-sqlite-"))]
    if args.mysql:
        db, prefix, env = mysql_env(args)
        try:
            results.append(bench("MySQL (MariaDB) + Redis", env, args, tmpdir("mfa-bench-mysql-")))
        finally:
            mysql_cleanup(args, db, prefix)
    print()
    print(section(results, args, rev, load_start))


if __name__ == "__main__":
    main()
