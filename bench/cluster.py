#!/usr/bin/env python3
"""`me` on a Redis Cluster against `me` on one Redis server, side by side: two release servers
on MySQL (a database each), one with REDIS_URL on the single Redis, one on the cluster, loaded
in turn by wrk (c32), each round starting with the next of them.

    bench/cluster.py                          # the cluster of .ci/cluster/redis (7000-7005)
    bench/cluster.py --rounds 3 --duration 5

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


def server_on(redis_url, name, args):
    db = f"user_api_bench_{name}"
    env = {"DATABASE_URL": run.fresh_database(args.mysql, db), "REDIS_URL": redis_url, "REDIS_KEY_PREFIX": f"bench-{name}-{int(time.time())}:"}
    server = Server(env, tmpdir(f"cluster-bench-{name}-"), name=name)
    body = json.dumps({"query": "mutation($i: RegisterInput!) { register(input: $i) { accessToken } }",
                       "variables": {"i": {"username": "bench", "email": "bench@example.com", "password": run.PASSWORD}}})
    status, text = run.http("POST", server.url + "/graphql", body)
    assert status == 200, text
    return server, json.loads(text)["data"]["register"]["accessToken"]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mysql", default="mysql://root@127.0.0.1:3306")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379")
    parser.add_argument("--cluster", default="redis+cluster://127.0.0.1:7000,127.0.0.1:7001,127.0.0.1:7002")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=int, default=10)
    args = parser.parse_args()
    run.ensure_wrk()
    rev = run.sh(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"]).strip()
    single, single_token = server_on(args.redis, "single", args)
    cluster, cluster_token = server_on(args.cluster, "cluster", args)
    try:
        results = []
        specs = [
            ("GraphQL me, one Redis", single.url + "/graphql", "post.lua", 32, {"BODY": run.ME_QUERY, "TOKEN": single_token}),
            ("GraphQL me, Redis Cluster", cluster.url + "/graphql", "post.lua", 32, {"BODY": run.ME_QUERY, "TOKEN": cluster_token}),
        ]
        # Each spec's runs are of its own server.
        runs = [[] for _ in specs]
        for i in range(args.rounds):
            for k in range(len(specs)):
                j = (i + k) % len(specs)
                name, url, script, connections, env = specs[j]
                server = single if j == 0 else cluster
                runs[j].append(run.run_once(server, url, script, connections, args.duration, env, i))
        one, many = (run.summarize(results, spec[0], spec[3], r) for spec, r in zip(specs, runs))
        ratios = run.pair_ratios(one, many, "rps")
    finally:
        single.stop()
        cluster.stop()
    print("\n## Redis Cluster against one Redis (bench/cluster.py)\n")
    print(f"Command: `bench/cluster.py {' '.join(sys.argv[1:])}`".rstrip() + f"  \nCommit {rev}, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Two release servers on MySQL, one on the single Redis, "
          "one on a 6-node Redis Cluster (3 masters with a replica each, `.ci/cluster/redis`), "
          f"loaded in turn by wrk at c32, {args.rounds} × {args.duration} s each; every process shares the 2 cores.\n")
    print("| server | req/s (each run) | p50 | p99 | server CPU per answer |")
    print("|---|---:|---:|---:|---:|")
    for r in (one, many):
        each = "/".join(f"{x:.0f}" for x in r["each_rps"])
        print(f"| {r['name']} | {r['rps']:.0f} ({each}) | {run.fmt_ms(r['p50'])} | {run.fmt_ms(r['p99'])} | {run.fmt_us(r['cpu_us'])} |")
    print(f"\n`me` on the cluster ÷ on one Redis, req/s: {run.median(ratios):.0%} (target ≥ 90%; each round: "
          f"{'/'.join(f'{x:.0%}' for x in ratios)})")


if __name__ == "__main__":
    main()
