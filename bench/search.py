#!/usr/bin/env python3
"""Benchmark of filtered user lists: the first unfiltered page of `users` against a page
filtered by a username prefix and one filtered by an email prefix (as an admin), over a table
of --users bulk-inserted users, on MySQL + Redis and on embedded SQLite. Appends a section
with the command and the figures to bench/RESULTS.md.

    bench/search.py                         # 1,000,000 users, both backends, 3 × 10 s each
    bench/search.py --users 200000 --backend sqlite --duration 5
    bench/search.py --totals                # UserConnection.totalCount instead of pages

With --totals it measures `users { totalCount }` instead: served from the count kept per
filter (under load), and counted afresh (one request after each 5 s period, when the kept
count has expired), without a filter and with the username prefix; its section is "Totals
over a million users".

The target: a prefix page costs about what the first unfiltered page costs (p50 within 1.5×).
MySQL/MariaDB must answer at --mysql and Redis at --redis; a database named
user_api_search_bench is dropped and re-created there. Users go in by multi-row INSERTs
(MySQL) or one transaction (SQLite), not through the API. The helpers (wrk, the server
launcher, medians) are bench/run.py's.
"""

import argparse
import datetime
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402  (bench/run.py: wrk, Server, seeding helpers)

DB = "user_api_search_bench"
COLUMNS = "id, username, username_lower, email, email_lower, password_hash, role, registration_date, updated_at"


def scrambled(i, multiplier):
    """A bijection of 0..2^32 (an odd multiplier mod 2^32), as 8 hex digits: unique names
    whose order is unlike the ids' (and unlike each other's for two multipliers)."""
    return f"{(i * multiplier) % (1 << 32):08x}"


def seed_rows(count, phc):
    """Users in registration (id) order, with usernames `u<hex>` in mixed case and emails
    `<hex>@example.com` in another order, so each prefix picks users from all over the table."""
    base_ms = int(time.time() * 1000) - count
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")
    for i in range(count):
        name = "u" + scrambled(i, 2654435761)
        if i % 2:
            name = name.upper()
        email = scrambled(i, 2246822519) + "@example.com"
        yield (run.uuid7(base_ms + i, i), name, name.lower(), email, email, phc, "user", now, now)


def seed_mysql(server_url, count, phc):
    proc = subprocess.Popen(run.mysql_cli(server_url) + [DB], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    batch = []

    def flush():
        values = ",".join("(" + ",".join(f"'{v}'" for v in row) + ")" for row in batch)
        proc.stdin.write(f"INSERT INTO users ({COLUMNS}) VALUES {values};\n")
        batch.clear()

    proc.stdin.write("SET unique_checks=0; SET autocommit=0;\n")
    for row in seed_rows(count, phc):
        batch.append(row)
        if len(batch) == 5000:
            flush()
    if batch:
        flush()
    proc.stdin.write("COMMIT; ANALYZE TABLE users;\n")
    proc.stdin.close()
    if proc.wait() != 0:
        raise SystemExit("seeding MySQL failed")


def seed_sqlite(path, count, phc):
    conn = sqlite3.connect(path)
    conn.executemany(f"INSERT INTO users ({COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?)", seed_rows(count, phc))
    conn.commit()
    conn.close()


def users_query(filter_):
    return json.dumps({
        "query": "query($f: UserFilter) { users(first: 20, filter: $f) "
                 "{ nodes { id username email } pageInfo { hasNextPage endCursor } } }",
        "variables": {"f": filter_},
    })


# (name, filter): the unfiltered first page, and the two prefix searches. "uA7" matches about
# 1/4096 of the users (~244 of a million), "a7" about 1/256 of the emails (~3,900).
SCENARIOS = [
    ("users, first page (no filter)", None),
    ("users, usernamePrefix \"uA7\"", {"usernamePrefix": "uA7"}),
    ("users, emailPrefix \"a7\" (admin)", {"emailPrefix": "a7"}),
]


def total_query(filter_):
    return json.dumps({
        "query": "query($f: UserFilter) { users(first: 1, filter: $f) { totalCount } }",
        "variables": {"f": filter_},
    })


# Each filter with the count statement the server runs for it (accounts::repo::count_filtered).
TOTAL_SCENARIOS = [
    ("totalCount, no filter", None, "SELECT COUNT(*) FROM users"),
    ("totalCount, usernamePrefix \"uA7\"", {"usernamePrefix": "uA7"},
     "SELECT COUNT(*) FROM users WHERE username_lower >= 'ua7' AND username_lower < 'ua8'"),
]
# How long the server answers a count before it counts again beside the requests
# (users::COUNT_FRESH_FOR), and how many counts to time.
COUNT_FRESH_FOR_S = 5
FRESH_COUNTS = 5


def fresh_counts(backend, server_url, workdir, statement):
    """Milliseconds the database takes for the count statement, each of `FRESH_COUNTS` times,
    and the count. Timed in the database itself: the server answers a kept count while it
    counts again, so no request shows what a count costs. MariaDB's own profile (the
    statement alone); SQLite in this process."""
    times, total = [], None
    if backend == "mysql":
        script = "SET profiling = 1; " + "; ".join([statement] * FRESH_COUNTS) + "; SHOW PROFILES;"
        out = run.sh(run.mysql_cli(server_url) + ["-N", "-D", DB, "-e", script]).strip().splitlines()
        total = int(out[0])
        # SHOW PROFILES: query id, seconds, text; one row per statement, the SET first.
        profiles = [line.split("\t") for line in out[FRESH_COUNTS:]]
        times = [float(p[1]) * 1000 for p in profiles if p[2].startswith("SELECT")]
    else:
        conn = sqlite3.connect(os.path.join(workdir, "data", "users.db"))
        for _ in range(FRESH_COUNTS):
            started = time.perf_counter()
            total = conn.execute(statement).fetchone()[0]
            times.append((time.perf_counter() - started) * 1000)
        conn.close()
    return times, total


def run_backend(backend, args, workdir):
    if backend == "mysql":
        server_url = args.mysql.rstrip("/")
        env = {"DATABASE_URL": run.fresh_database(server_url, DB), "REDIS_URL": args.redis, "REDIS_KEY_PREFIX": f"search{int(time.time())}:"}
    else:
        env = {"DATABASE_URL": "sqlite://data/users.db"}
    print(f"\n== {backend}", flush=True)

    # The server migrates the empty database and registers the admin; then it stops while
    # the users go in behind its back.
    server = run.Server(env, workdir)
    body = json.dumps({"query": "mutation($i: RegisterInput!) { register(input: $i) { accessToken } }",
                       "variables": {"i": {"username": "bench", "email": "bench@example.com", "password": run.PASSWORD}}})
    status, text = run.http("POST", server.url + "/graphql", body)
    assert status == 200 and "errors" not in text, text
    server.stop()
    started = time.monotonic()
    if backend == "mysql":
        mysql = run.mysql_cli(server_url)
        run.sh(mysql + ["-e", f"UPDATE {DB}.users SET role = 'admin' WHERE username = 'bench'"])
        phc = run.sh(mysql + ["-N", "-e", f"SELECT password_hash FROM {DB}.users WHERE username='bench'"]).strip()
        seed_mysql(server_url, args.users, phc)
    else:
        path = os.path.join(workdir, "data", "users.db")
        conn = sqlite3.connect(path)
        conn.execute("UPDATE users SET role = 'admin' WHERE username = 'bench'")
        phc = conn.execute("SELECT password_hash FROM users WHERE username='bench'").fetchone()[0]
        conn.commit()
        conn.close()
        seed_sqlite(path, args.users, phc)
    seed_s = time.monotonic() - started
    print(f"  seeded {args.users} users in {seed_s:.0f} s", flush=True)

    server = run.Server(env, workdir)
    gql = server.url + "/graphql"
    status, text = run.http("POST", gql, run.LOGIN_BODY.replace("{ expiresIn }", "{ accessToken }"))
    token = json.loads(text)["data"]["login"]["accessToken"]
    if args.totals:
        results, fresh = [], []
        for name, filter_, statement in TOTAL_SCENARIOS:
            times, total = fresh_counts(backend, args.mysql.rstrip("/"), workdir, statement)
            fresh.append((name, times, total))
            print(f"  {name}: counted afresh in {'/'.join(f'{t:.1f}' for t in times)} ms ({total:,} users)", flush=True)
        specs = [(name + " (served)", gql, "post.lua", 32, {"BODY": total_query(f), "TOKEN": token}) for name, f, _ in TOTAL_SCENARIOS]
        measured = run.interleaved(results, server, specs, args.duration, args.repeat)
        server.stop()
        return {"backend": backend, "seed_s": seed_s, "results": results, "measured": measured, "fresh": fresh}
    # Each scenario must answer a full page without errors, or the figures mean nothing.
    for name, filter_ in SCENARIOS:
        status, text = run.http("POST", gql, users_query(filter_), token=token)
        page = json.loads(text)
        assert status == 200 and "errors" not in page, text
        assert len(page["data"]["users"]["nodes"]) == 20, f"{name}: {text[:300]}"
    results = []
    specs = [(name, gql, "post.lua", 32, {"BODY": users_query(f), "TOKEN": token}) for name, f in SCENARIOS]
    measured = run.interleaved(results, server, specs, args.duration, args.repeat)
    server.stop()
    return {"backend": backend, "seed_s": seed_s, "results": results, "measured": measured}


def write_totals_section(args, runs, started):
    rev = run.sh(["git", "rev-parse", "--short", "HEAD"], cwd=run.ROOT).strip()
    lines = [
        "",
        "## Totals over a million users (bench/search.py --totals)",
        "",
        f"Command: `{' '.join(['bench/search.py'] + sys.argv[1:])}`  ",
        f"Date: {started:%Y-%m-%d %H:%M} UTC; commit {rev}  ",
        f"Machine: {run.machine()}; wrk, the server, MariaDB and Redis share the cores.  ",
        f"{args.users:,} users bulk-inserted as in \"Filtered user lists\", then `users(first: 1) {{ totalCount }}` "
        "without a filter and with the username prefix \"uA7\". *Counted afresh*: the count statement the "
        f"server runs, {FRESH_COUNTS} times in the database itself (MariaDB's `SHOW PROFILES`; SQLite timed in "
        "Python), since no request waits for a count any more. *Served*: "
        f"{args.repeat} × {args.duration} s at 32 connections; every request is answered from the count kept for "
        f"its filter, which is counted again beside the requests once it is {COUNT_FRESH_FOR_S} s old.",
        "",
    ]
    for r_ in runs:
        title = "MySQL (MariaDB) + Redis" if r_["backend"] == "mysql" else "embedded SQLite"
        lines += [f"### {title}", "", "| counted afresh | users counted | ms per count (each) | median |", "|---|---:|---:|---:|"]
        for name, times, total in r_["fresh"]:
            lines.append(f"| {name} | {total:,} | {'/'.join(f'{t:.1f}' for t in times)} | {run.median(times):.1f} |")
        lines += ["", "| served | connections | req/s (each run) | p50 | p99 | failed |", "|---|---:|---:|---:|---:|---:|"]
        for r in r_["results"]:
            each = "/".join(f"{x:.0f}" for x in r["each_rps"])
            lines.append(f"| {r['name']} | {r['connections']} | {r['rps']:.0f} ({each}) | {run.fmt_ms(r['p50'])} | {run.fmt_ms(r['p99'])} | {r['failed']} |")
        lines.append("")
    with open(args.out, "a") as f:
        f.write("\n".join(lines))
    print(f"\nappended to {args.out}")


def write_section(args, runs, started):
    rev = run.sh(["git", "rev-parse", "--short", "HEAD"], cwd=run.ROOT).strip()
    lines = [
        "",
        "## Filtered user lists (bench/search.py)",
        "",
        f"Command: `{' '.join(['bench/search.py'] + sys.argv[1:])}`  ",
        f"Date: {started:%Y-%m-%d %H:%M} UTC; commit {rev}  ",
        f"Machine: {run.machine()}; wrk, the server, MariaDB and Redis share the cores.  ",
        f"{args.users:,} users bulk-inserted (usernames `u<8 hex>` in mixed case, emails `<8 hex>@example.com`, "
        "each in an order unlike the ids'), then `users(first: 20)` without a filter, with a username prefix "
        "(ordered by username: one range scan of `users_username_lower_key`) and, as an admin, with an email "
        "prefix (one range scan of `users_email_lower_key`). "
        f"Each scenario runs {args.repeat} × {args.duration} s at 32 connections with one wrk thread, the three in turn; "
        "req/s, p50 and p99 are the medians of the runs; the ratios are medians of each round's ratio.",
        "",
    ]
    for r_ in runs:
        title = "MySQL (MariaDB) + Redis" if r_["backend"] == "mysql" else "embedded SQLite"
        lines += [f"### {title}", "", f"Seeding took {r_['seed_s']:.0f} s.", "",
                  "| scenario | connections | req/s (each run) | p50 | p99 | failed |", "|---|---:|---:|---:|---:|---:|"]
        for r in r_["results"]:
            each = "/".join(f"{x:.0f}" for x in r["each_rps"])
            lines.append(f"| {r['name']} | {r['connections']} | {r['rps']:.0f} ({each}) | {run.fmt_ms(r['p50'])} | {run.fmt_ms(r['p99'])} | {r['failed']} |")
        first, by_name, by_email = r_["measured"]
        lines += ["", "Against the target (a prefix page within 1.5× of the first unfiltered page):", ""]
        for label, other in (("username prefix", by_name), ("email prefix", by_email)):
            p50 = run.pair_ratios(first, other, "p50")
            rps = [b / a for a, b in zip(other["each_rps"], first["each_rps"])]
            lines.append(f"- {label} ÷ first page, p50: {run.median(p50):.2f}× (each round: {'/'.join(f'{x:.2f}' for x in p50)}); "
                         f"first-page req/s ÷ {label} req/s: {run.median(rps):.2f}×")
        lines.append("")
    with open(args.out, "a") as f:
        f.write("\n".join(lines))
    print(f"\nappended to {args.out}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backend", choices=["mysql", "sqlite", "both"], default="both")
    p.add_argument("--duration", type=int, default=10, help="seconds per run of a scenario")
    p.add_argument("--repeat", type=int, default=3, help="runs per scenario; the medians are reported")
    p.add_argument("--users", type=int, default=1_000_000, help="users seeded")
    p.add_argument("--mysql", default="mysql://root@127.0.0.1:3306")
    p.add_argument("--redis", default="redis://127.0.0.1:6379")
    p.add_argument("--out", default=os.path.join(run.BENCH, "RESULTS.md"), help="where to append the results")
    p.add_argument("--skip-build", action="store_true", help="reuse target/release/user-api")
    p.add_argument("--totals", action="store_true", help="measure UserConnection.totalCount instead of pages")
    args = p.parse_args()
    started = datetime.datetime.now(datetime.timezone.utc)
    run.ensure_wrk()
    if not args.skip_build:
        print("building the release binary", flush=True)
        subprocess.run(["cargo", "build", "--release", "-q"], cwd=run.ROOT, check=True)
    runs = []
    for backend in (["mysql", "sqlite"] if args.backend == "both" else [args.backend]):
        with tempfile.TemporaryDirectory() as workdir:
            runs.append(run_backend(backend, args, workdir))
    (write_totals_section if args.totals else write_section)(args, runs, started)


if __name__ == "__main__":
    main()
