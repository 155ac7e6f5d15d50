"""Fault suites: stop Redis, then MariaDB, under load and watch what the API answers and how
fast it recovers; and several API processes sharing one MariaDB and one Redis.

Not run by itself: `reliability/run.py --suite faults,multi` runs these. The MariaDB and Redis
stopped here are the run's own, on spare loopback ports; the machine's shared ones are never
touched.
"""

import collections
import json
import signal
import statistics
import threading
import time
import uuid

from common import PASSWORD, Client, Server, error_code, login, register

ME_QUERY = "{ me { id username } }"


# --- load ----------------------------------------------------------------------------------


class Load:
    """`threads` threads, each calling one of `ops` in turn until stopped. Every call is
    recorded as (start, end, op name, outcome, detail); outcome "ok" is a success, anything
    else names the failure ("503", "SERVICE_UNAVAILABLE", "transport", …)."""

    def __init__(self, base, ops, threads):
        self.base, self.ops, self.threads = base, ops, threads
        self.records = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.workers = []

    def start(self):
        for i in range(self.threads):
            t = threading.Thread(target=self.work, args=(i,), daemon=True)
            t.start()
            self.workers.append(t)

    def work(self, index):
        client = Client(self.base, timeout=30)
        n = 0
        mine = []
        while not self.stopping.is_set():
            name, op = self.ops[(index + n) % len(self.ops)]
            n += 1
            started = time.monotonic()
            try:
                outcome, detail = op(client, index, n)
            except OSError as e:
                outcome, detail = "transport", str(e)
                time.sleep(0.01)
            mine.append((started, time.monotonic(), name, outcome, detail))
        client.close()
        with self.lock:
            self.records.extend(mine)

    def stop(self):
        self.stopping.set()
        for t in self.workers:
            t.join(timeout=60)
        self.records.sort()
        return self.records


def rest_me(tokens):
    def op(client, index, n):
        status, _, text = client.request("GET", "/users/me", token=tokens[(index + n) % len(tokens)])
        if status == 200 and '"username"' in text:
            return "ok", None
        return str(status), None
    return op


def gql_me(tokens):
    def op(client, index, n):
        status, body = client.gql(ME_QUERY, token=tokens[(index + n) % len(tokens)])
        if status == 200 and (body.get("data") or {}).get("me"):
            return "ok", None
        return error_code(body) or f"http {status}", None
    return op


def registrations(run_id):
    """Alternates REST and GraphQL registrations of fresh usernames; the detail is the name."""
    def op(client, index, n):
        name = f"f{run_id}_{index}_{n}"
        if n % 2:
            status, _, text = client.request("POST", "/users/register", {"username": name, "email": f"{name}@example.com", "password": PASSWORD})
            return ("ok" if status == 200 else str(status)), name
        status, body = client.gql("mutation($i: RegisterInput!) { register(input: $i) { user { id } } }",
                                  {"i": {"username": name, "email": f"{name}@example.com", "password": PASSWORD}})
        if status == 200 and (body.get("data") or {}).get("register"):
            return "ok", name
        return error_code(body) or f"http {status}", name
    return op


def window(records, start, end, names=None):
    """Calls that started at or after `start` and ended by `end`."""
    return [r for r in records if r[0] >= start and r[1] <= end and (names is None or r[2] in names)]


def outcomes(records):
    return dict(collections.Counter(r[3] for r in records))


def fmt(counts):
    return ", ".join(f"{k}: {v}" for k, v in sorted(counts.items(), key=lambda kv: (kv[0] != "ok", kv[0]))) or "none"


def latency_ms(records):
    if not records:
        return "–"
    ms = sorted((r[1] - r[0]) * 1000 for r in records)
    return f"p50 {statistics.median(ms):.0f} ms, max {ms[-1]:.0f} ms"


def recovery(records, back, names):
    """(seconds from `back` to the first success, seconds from `back` until the last failure
    of a call that started after `back` ended — 0 when none failed)."""
    after = [r for r in records if r[0] >= back and r[2] in names]
    first_ok = next((r[1] - back for r in after if r[3] == "ok"), None)
    failures = [r[1] - back for r in after if r[3] != "ok"]
    return first_ok, max(failures, default=0.0)


def sample_readyz(base, stop, samples):
    client = Client(base, timeout=10)
    while not stop.is_set():
        try:
            status, _, text = client.request("GET", "/readyz")
            samples.append((time.monotonic(), status, text))
        except OSError:
            pass
        stop.wait(0.25)


# --- the fault suite -----------------------------------------------------------------------


def faults(ctx, section):
    db_url = ctx.mariadb.create_database("rel_faults")
    env = {"DATABASE_URL": db_url, "REDIS_URL": ctx.redis.url, "REDIS_KEY_PREFIX": f"rel-faults-{uuid.uuid4().hex[:8]}:",
           "POOL_TIMEOUT": "5"}
    server = Server(env, ctx.workdir, "faults")
    section.note(f"API: `DATABASE_URL={ctx.mariadb.url}/rel_faults REDIS_URL={ctx.redis.url} POOL_TIMEOUT=5 target/release/user-api` "
                 f"(MariaDB and Redis private to the run, on spare loopback ports).")
    # SIGKILL is a crash (connections drop without a word); SIGTERM a clean shutdown (the server
    # closes its connections first). --quick does only the crash.
    signals = [signal.SIGKILL] if ctx.quick else [signal.SIGKILL, signal.SIGTERM]
    try:
        ok = True
        for sig in signals:
            ok &= redis_fault(ctx, section, server, sig)
        for sig in signals:
            ok &= mariadb_fault(ctx, section, server, sig)
        ok &= section.check("the API process never restarted", server.alive(), f"pid {server.pid} throughout")
    finally:
        server.stop()
    return ok


def timeline(ctx):
    return (2, 3, 4) if ctx.quick else (3, 5, 6)


def outage(server, load, stop, start, before_s, down_s, after_s, prepare=None):
    """Runs `load` for `before_s`, then `prepare()` if given and `stop()` (the dependency goes
    down), samples /readyz for `down_s`, then `start()`s it again and keeps the load on for
    `after_s`. Returns the moments (t0, kill: before stop(), down: after it, restart: before
    start(), back: after it), the load's records and the /readyz samples."""
    ready_samples, ready_stop = [], threading.Event()
    t0 = time.monotonic()
    load.start()
    time.sleep(before_s)
    if prepare:
        prepare()
    kill = time.monotonic()
    stop()
    down = time.monotonic()
    sampler = threading.Thread(target=sample_readyz, args=(server.url, ready_stop, ready_samples), daemon=True)
    sampler.start()
    time.sleep(down_s)
    ready_stop.set()
    restart = time.monotonic()
    start()
    back = time.monotonic()
    time.sleep(after_s)
    records = load.stop()
    sampler.join()
    return t0, kill, down, restart, back, records, ready_samples


def redis_fault(ctx, section, server, sig):
    client = Client(server.url)
    tokens = [register(client, f"redis{sig.name[3:].lower()}{i}") for i in range(16)]
    R = f"Redis ({sig.name})"
    protected = {"REST GET /users/me", "GraphQL me"}
    load = Load(server.url, [("REST GET /users/me", rest_me(tokens)), ("GraphQL me", gql_me(tokens))], threads=8)
    before_s, down_s, after_s = timeline(ctx)
    c = section.command(f"Redis fault: 8 client threads alternate REST `GET /users/me` and GraphQL `me` with 16 tokens; "
                        f"after {before_s} s `redis-cli SAVE` then {sig.name} redis-server; {down_s} s later start it again "
                        f"(same port, same RDB); {after_s} s more of load")
    t0, kill, down, restart, back, records, ready_samples = outage(
        server, load, lambda: ctx.redis.stop(sig), ctx.redis.start, before_s, down_s, after_s, prepare=ctx.redis.snapshot)

    baseline = window(records, t0, kill)
    during = window(records, down, restart)
    straddling = [r for r in records if r[0] < down and r[1] > kill]
    first_ok, last_fail = recovery(records, back, protected)
    after = [r for r in records if r[0] >= back + 2.0]
    section.figure(f"{R}: calls before the stop", fmt(outcomes(baseline)), c)
    section.figure(f"{R}: calls started and answered while Redis was down", fmt(outcomes(during)), c)
    section.figure(f"{R}: latency of those answers", latency_ms(during), c)
    section.figure(f"{R}: calls in flight at the stop", fmt(outcomes(straddling)), c)
    section.figure(f"{R}: restart to PING answering", f"{back - restart:.2f} s", c)
    section.figure(f"{R}: first success after Redis answered", "none" if first_ok is None else f"{first_ok:.3f} s", c)
    section.figure(f"{R}: last failure after Redis answered", f"{last_fail:.3f} s", c)
    section.figure(f"{R}: calls from 2 s after Redis answered", fmt(outcomes(after)), c)
    readyz = collections.Counter(s[1] for s in ready_samples)
    section.figure(f"{R}: /readyz while down", fmt({str(k): v for k, v in readyz.items()}), c)

    ok = section.check(f"{R} down: no token-protected call succeeded", not any(r[3] == "ok" for r in during),
                       f"{len(during)} calls, {sum(r[3] == 'ok' for r in during)} successes")
    expected = {"503", "SERVICE_UNAVAILABLE"}
    ok &= section.check(f"{R} down: every answer was 503 / SERVICE_UNAVAILABLE", during and all(r[3] in expected for r in during),
                        fmt(outcomes(during)))
    ok &= section.check(f"{R} back: service restored within 2 s", first_ok is not None and last_fail <= 2.0,
                        f"last failure {last_fail:.3f} s after Redis answered")
    ok &= section.check(f"{R} back: no failures after that", after and all(r[3] == "ok" for r in after), fmt(outcomes(after)))
    ok &= section.check(f"{R}: /readyz reported the session store down", readyz and set(readyz) == {503}
                        and all('"sessions":"down"' in s[2] for s in ready_samples), fmt({str(k): v for k, v in readyz.items()}))
    return ok


def mariadb_fault(ctx, section, server, sig):
    client = Client(server.url)
    tokens = [register(client, f"db{sig.name[3:].lower()}{i}") for i in range(16)]
    M = f"MariaDB ({sig.name})"
    run_id = uuid.uuid4().hex[:6]
    reads = {"REST GET /users/me", "GraphQL me"}
    load = Load(server.url, [("REST GET /users/me", rest_me(tokens)), ("register", registrations(run_id)),
                             ("GraphQL me", gql_me(tokens)), ("register", registrations(run_id))], threads=8)
    before_s, down_s, after_s = timeline(ctx)
    c = section.command(f"MariaDB fault: 8 client threads alternate registrations (REST and GraphQL, fresh names) with "
                        f"REST `GET /users/me` / GraphQL `me`; after {before_s} s {sig.name} mariadbd; {down_s} s later start it "
                        f"again on the same datadir and port; {after_s + 2} s more of load; then look up every username "
                        f"whose registration was answered with success (`SELECT username FROM users WHERE username IN …`)")
    t0, kill, down, restart, back, records, ready_samples = outage(
        server, load, lambda: ctx.mariadb.stop(sig), ctx.mariadb.start, before_s, down_s, after_s + 2)

    during = window(records, down, restart)
    first_ok, last_fail = recovery(records, back, reads | {"register"})
    after = [r for r in records if r[0] >= back + 2.0]
    section.figure(f"{M}: calls before the stop", fmt(outcomes(window(records, t0, kill))), c)
    section.figure(f"{M}: calls in flight at the stop", fmt(outcomes([r for r in records if r[0] < down and r[1] > kill])), c)
    section.figure(f"{M}: calls started and answered while MariaDB was down", fmt(outcomes(during)), c)
    section.figure(f"{M}: latency of those answers", latency_ms(during), c)
    section.figure(f"{M}: restart to first `SELECT 1` (recovery included)", f"{back - restart:.2f} s", c)
    section.figure(f"{M}: first success after MariaDB answered", "none" if first_ok is None else f"{first_ok:.3f} s", c)
    section.figure(f"{M}: last failure after MariaDB answered", f"{last_fail:.3f} s", c)
    section.figure(f"{M}: calls from 2 s after MariaDB answered", fmt(outcomes(after)), c)
    readyz = collections.Counter(s[1] for s in ready_samples)
    section.figure(f"{M}: /readyz while down", fmt({str(k): v for k, v in readyz.items()}), c)

    succeeded = sorted({r[4] for r in records if r[2] == "register" and r[3] == "ok"})
    failed = sorted({r[4] for r in records if r[2] == "register" and r[3] != "ok"})
    present = set()
    names = succeeded + failed
    for i in range(0, len(names), 500):
        chunk = names[i:i + 500]
        out = ctx.mariadb.sql("SELECT username FROM users WHERE username IN (" + ",".join(f"'{n}'" for n in chunk) + ")", "rel_faults")
        present |= set(out.split())
    missing = [n for n in succeeded if n not in present]
    section.figure(f"{M}: registrations answered with success / present afterwards", f"{len(succeeded)} / {len(succeeded) - len(missing)}", c)
    section.figure(f"{M}: registrations answered with a failure / present anyway", f"{len(failed)} / {sum(n in present for n in failed)}", c)
    if any(n in present for n in failed):
        section.note(f"{M}: a registration answered with a failure yet present afterwards committed just before the "
                     "stop and lost its answer with the connection (a retry gets CONFLICT); what must hold, and is "
                     "checked, is that every success is kept.")

    ok = section.check(f"{M} down: calls answered 503 / SERVICE_UNAVAILABLE, nothing else",
                       during and all(r[3] in {"503", "SERVICE_UNAVAILABLE"} for r in during), fmt(outcomes(during)))
    ok &= section.check(f"{M} back: recovered without restarting the API", first_ok is not None and after and all(r[3] == "ok" for r in after),
                        f"first success {first_ok if first_ok is None else round(first_ok, 3)} s, last failure {last_fail:.3f} s after MariaDB answered")
    ok &= section.check(f"{M}: every registration answered with success is present", succeeded and not missing,
                        f"{len(missing)} missing of {len(succeeded)}" + (f": {missing[:5]}" if missing else ""))
    ok &= section.check(f"{M}: /readyz reported the database down", readyz and set(readyz) == {503}
                        and all('"database":"down"' in s[2] for s in ready_samples), fmt({str(k): v for k, v in readyz.items()}))
    return ok


# --- several processes ---------------------------------------------------------------------


def multi(ctx, section):
    ok = True
    for store in ("redis", "database"):
        ok &= multi_store(ctx, section, store)
    return ok


def multi_store(ctx, section, store):
    db = f"rel_multi_{store}"
    env = {"DATABASE_URL": ctx.mariadb.create_database(db)}
    if store == "redis":
        env |= {"REDIS_URL": ctx.redis.url, "REDIS_KEY_PREFIX": f"rel-multi-{uuid.uuid4().hex[:8]}:"}
    servers = [Server(env, ctx.workdir, f"multi-{store}-{i}") for i in range(3)]
    label = "Redis" if store == "redis" else "sessions in MariaDB (no REDIS_URL)"
    rounds = 5 if ctx.quick else 20
    c = section.command(f"3 API processes on ports {', '.join(str(s.port) for s in servers)}, one MariaDB database ({db})"
                        + (", one Redis" if store == "redis" else ", sessions in the database")
                        + f"; {rounds} rounds of: register on one, use the token on all; log in on each; log out on one "
                        f"and immediately call every process with that token; change the password on one and immediately "
                        f"call every process with each other token")
    clients = [Client(s.url) for s in servers]
    stats = collections.Counter()
    problems = []

    def me(i, token):
        status, body = clients[i].gql(ME_QUERY, token=token)
        return "ok" if (body.get("data") or {}).get("me") else (error_code(body) or f"http {status}")

    try:
        for r in range(rounds):
            n = len(servers)
            name = f"multi{store[:1]}{r}_{uuid.uuid4().hex[:6]}"
            t_reg = register(clients[r % n], name)
            for i in range(n):
                stats["issued elsewhere, honoured"] += me(i, t_reg) == "ok"
                stats["cross-process calls"] += 1
            # One token per process, then log out the registration token on the next process.
            tokens = [login(clients[i], name) for i in range(n)]
            status, _, _ = clients[(r + 1) % n].request("POST", "/users/logout", token=t_reg)
            if status != 204:
                problems.append(f"logout answered {status}")
            for i in range(n):
                outcome = me(i, t_reg)
                stats["after logout, refused"] += outcome == "UNAUTHENTICATED"
                stats["after logout, calls"] += 1
                if outcome != "UNAUTHENTICATED":
                    problems.append(f"round {r}: logged-out token answered {outcome} on process {i}")
            # A password change through GraphQL on process k keeps its own token only.
            k = (r + 2) % n
            status, body = clients[k].gql("mutation($i: UpdateMeInput!) { updateMe(input: $i) { id } }",
                                          {"i": {"password": PASSWORD + "x", "currentPassword": PASSWORD}}, token=tokens[k])
            if not (body.get("data") or {}).get("updateMe"):
                problems.append(f"round {r}: updateMe answered {status} {body}")
            for j, token in enumerate(tokens):
                for i in range(n):
                    outcome = me(i, token)
                    if j == k:
                        stats["after password change, kept token honoured"] += outcome == "ok"
                        stats["after password change, kept-token calls"] += 1
                        if outcome != "ok":
                            problems.append(f"round {r}: the token that changed the password answered {outcome} on process {i}")
                    else:
                        stats["after password change, other tokens refused"] += outcome == "UNAUTHENTICATED"
                        stats["after password change, other-token calls"] += 1
                        if outcome != "UNAUTHENTICATED":
                            problems.append(f"round {r}: a revoked token answered {outcome} on process {i}")
    finally:
        for s in servers:
            s.stop()
    section.figure(f"{label}: tokens honoured by the other processes", f"{stats['issued elsewhere, honoured']} / {stats['cross-process calls']}", c)
    section.figure(f"{label}: logged-out token refused everywhere at once", f"{stats['after logout, refused']} / {stats['after logout, calls']}", c)
    section.figure(f"{label}: after a password change, other sessions refused everywhere at once",
                   f"{stats['after password change, other tokens refused']} / {stats['after password change, other-token calls']}", c)
    section.figure(f"{label}: after a password change, the changing session still honoured everywhere",
                   f"{stats['after password change, kept token honoured']} / {stats['after password change, kept-token calls']}", c)
    return section.check(f"{label}: every process agrees at once", not problems and stats["cross-process calls"] > 0,
                         "; ".join(problems[:5]) or f"{rounds} rounds")


def dumps(obj):
    return json.dumps(obj, sort_keys=True)
