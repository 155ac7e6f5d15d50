#!/usr/bin/env python3
"""Reads of other users through a MySQL read replica against the same reads on the primary,
side by side: two release servers on one database of a MariaDB primary/replica pair, one with
DATABASE_REPLICA_URLS and one without, sharing one Redis (sessions and key prefix), loaded in
turn by wrk (c32), each round starting with the next of them. The read is GraphQL
`user(id:)` of another user; the token check reads the caller from the primary in both.

    bench/replicas.py                          # the pair of .ci/cluster/mariadb (3307, 3308)
    bench/replicas.py --rounds 3 --duration 5

Prints a Markdown section for bench/RESULTS.md.
"""

import argparse
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "reliability"))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from common import Server, tmpdir  # noqa: E402
import run  # noqa: E402

REGISTER = "mutation($i: RegisterInput!) { register(input: $i) { accessToken user { id } } }"


def register(server, name):
    body = json.dumps({"query": REGISTER, "variables": {"i": {"username": name, "email": f"{name}@example.com", "password": run.PASSWORD}}})
    status, text = run.http("POST", server.url + "/graphql", body)
    assert status == 200, text
    data = json.loads(text)["data"]["register"]
    return data["accessToken"], data["user"]["id"]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--primary", default="mysql://root@127.0.0.1:3307")
    parser.add_argument("--replica", default="mysql://root@127.0.0.1:3308")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=int, default=10)
    args = parser.parse_args()
    run.ensure_wrk()
    rev = run.sh(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"]).strip()
    db = "user_api_bench_replicas"
    url = run.fresh_database(args.primary, db)
    for _ in range(100):
        if db in run.sh(run.mysql_cli(args.replica) + ["-N", "-e", "SHOW DATABASES"]):
            break
        time.sleep(0.1)
    shared = {"DATABASE_URL": url, "REDIS_URL": args.redis, "REDIS_KEY_PREFIX": f"bench-replicas-{int(time.time())}:"}
    primary = Server(shared, tmpdir("replicas-bench-primary-"), name="primary")
    replica = Server({**shared, "DATABASE_REPLICA_URLS": f"{args.replica.rstrip('/')}/{db}"}, tmpdir("replicas-bench-replica-"), name="replica")
    try:
        token, _ = register(primary, "reader")
        _, other = register(primary, "other")
        # Until the replica holds both users and is checked, its reads would go to the primary.
        for _ in range(100):
            status, text = run.http("GET", replica.url + "/readyz")
            if '"state":"ok"' in text.replace(" ", ""):
                break
            time.sleep(0.1)
        body = json.dumps({"query": "query($id: ID!) { user(id: $id) { id username email } }", "variables": {"id": other}})
        specs = [
            ("GraphQL user(id:), primary only", primary, body),
            ("GraphQL user(id:), through the replica", replica, body),
        ]
        results = []
        runs = [[] for _ in specs]
        for i in range(args.rounds):
            for k in range(len(specs)):
                j = (i + k) % len(specs)
                _, server, b = specs[j]
                runs[j].append(run.run_once(server, server.url + "/graphql", "post.lua", 32, args.duration, {"BODY": b, "TOKEN": token}, i))
        one, many = (run.summarize(results, spec[0], 32, r) for spec, r in zip(specs, runs))
        ratios = run.pair_ratios(one, many, "rps")
        _, metrics = run.http("GET", replica.url + "/metrics")
        on_replica = next((line.split()[-1] for line in metrics.splitlines() if line.startswith('db_lagging_reads_total{target="replica"}')), "0")
    finally:
        primary.stop()
        replica.stop()
    print("\n## Reads through a MySQL replica against the primary (bench/replicas.py)\n")
    command = " ".join(["bench/replicas.py", *sys.argv[1:]])
    print(f"Command: `{command}`  \nCommit {rev}, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Two release servers on one database of a MariaDB "
          "primary/replica pair (`.ci/cluster/mariadb`), sharing one Redis; one reads other users through the replica, "
          f"the other from the primary; loaded in turn by wrk at c32, {args.rounds} × {args.duration} s each; "
          f"every process (both MariaDB servers included) shares the 2 cores. Reads the replica served: {on_replica}.\n")
    print("| server | req/s (each run) | p50 | p99 | server CPU per answer |")
    print("|---|---:|---:|---:|---:|")
    for r in (one, many):
        each = "/".join(f"{x:.0f}" for x in r["each_rps"])
        print(f"| {r['name']} | {r['rps']:.0f} ({each}) | {run.fmt_ms(r['p50'])} | {run.fmt_ms(r['p99'])} | {run.fmt_us(r['cpu_us'])} |")
    print(f"\nThrough the replica ÷ on the primary, req/s: {run.median(ratios):.0%} (target ≥ 90%; each round: "
          f"{'/'.join(f'{x:.0%}' for x in ratios)})")


if __name__ == "__main__":
    main()
