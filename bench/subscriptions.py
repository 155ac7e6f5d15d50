#!/usr/bin/env python3
"""Subscriptions under load: many idle subscriptions held by one process (its RSS), and one
account's event fanned out to many subscribers of it (the delivery latency). The release
server runs on MySQL + Redis and on the embedded SQLite default; the WebSocket clients are
bench/ws-load (Rust, tokio-tungstenite), built here, on the same machine.

    bench/subscriptions.py                        # 10,000 idle (1,000 accounts × 10), fan-out to 1,000
    bench/subscriptions.py --backend sqlite --idle 2000 --accounts 200

Prints a Markdown section for bench/RESULTS.md.
"""

import argparse
import concurrent.futures
import json
import os
import resource
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "reliability"))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from common import Client, Server, register, rss_kib, tmpdir  # noqa: E402
import run  # noqa: E402

WS_LOAD_DIR = os.path.join(ROOT, "bench", "ws-load")
WS_LOAD = os.path.join(WS_LOAD_DIR, "target", "release", "ws-load")


def build_ws_load():
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=WS_LOAD_DIR, check=True)


def register_all(url, names):
    """Registers `names` from a few threads (each hash takes tens of ms); their tokens."""
    def one(name):
        client = Client(url, timeout=30)
        try:
            return register(client, name)
        finally:
            client.close()
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(one, names))


def idle(server, workdir, accounts, per_account):
    tokens = register_all(server.url, [f"idle{i}" for i in range(accounts)])
    token_file = os.path.join(workdir, "tokens.txt")
    with open(token_file, "w") as f:
        f.write("\n".join(tokens))
    time.sleep(1)
    before = server.rss_mib()
    ws = server.url.replace("http://", "ws://") + "/graphql"
    started = time.monotonic()
    load = subprocess.Popen([WS_LOAD, "idle", ws, token_file, str(per_account)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    ready = load.stdout.readline().split()
    opened = time.monotonic() - started
    assert ready and ready[0] == "ready", ready
    count = int(ready[1])
    # Held idle for a while, then measured: what the connections themselves cost.
    time.sleep(5)
    held = server.rss_mib()
    hwm = server.rss_mib("VmHWM")
    # Alive: an event of one account reaches each of its connections.
    client = Client(server.url)
    status, body = client.gql("mutation { updateMe(input: {email: \"idle0-new@example.com\"}) { id } }", token=tokens[0])
    assert status == 200 and "errors" not in body, body
    load.stdin.write("0\n")
    load.stdin.flush()
    heard = int(load.stdout.readline().split()[1])
    load.stdin.close()
    load.wait(timeout=30)
    return {"connections": count, "accounts": accounts, "open_s": opened, "rss_before_mib": before,
            "rss_held_mib": held, "rss_hwm_mib": hwm, "heard": heard, "expected_heard": per_account}


def fanout(server, subscribers, rounds):
    client = Client(server.url)
    token = register(client, "fanout")
    ws = server.url.replace("http://", "ws://") + "/graphql"
    out = subprocess.run([WS_LOAD, "fanout", ws, server.url + "/graphql", token, str(subscribers), str(rounds)],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=["mysql", "sqlite", "both"], default="both")
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--idle", type=int, default=10000, help="idle connections in all")
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--mysql", default="mysql://root@127.0.0.1:3306")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # Client and server each hold one descriptor per connection.
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < args.idle + 1000:
        sys.exit(f"open files limit {hard} is too low for {args.idle} connections")
    build_ws_load()
    rev = run.sh(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"]).strip()
    backends = ["mysql", "sqlite"] if args.backend == "both" else [args.backend]
    rows = []
    for backend in backends:
        workdir = tmpdir(f"subs-{backend}-")
        if backend == "mysql":
            db = "user_api_bench_subs"
            env = {"DATABASE_URL": run.fresh_database(args.mysql, db), "REDIS_URL": args.redis, "REDIS_KEY_PREFIX": f"subs{int(time.time())}:"}
        else:
            env = {"DATABASE_URL": "sqlite://data/users.db"}
        env["WS_MAX_CONNECTIONS"] = str(args.idle + args.subscribers + 100)
        # The fan-out's subscribers are connections of one account.
        env["WS_MAX_CONNECTIONS_PER_ACCOUNT"] = str(max(args.subscribers, 32))
        server = Server(env, workdir)
        try:
            print(f"== {backend}: {args.idle} idle subscriptions", flush=True)
            held = idle(server, workdir, args.accounts, args.idle // args.accounts)
            print(json.dumps(held), flush=True)
            print(f"== {backend}: fan-out to {args.subscribers}", flush=True)
            fan = fanout(server, args.subscribers, args.rounds)
            print(json.dumps(fan), flush=True)
            rows.append((backend, held, fan))
        finally:
            server.stop()
    name = {"mysql": "MySQL + Redis", "sqlite": "embedded SQLite"}
    print(f"\n## Subscriptions (bench/subscriptions.py)\n")
    print(f"Command: `bench/subscriptions.py {' '.join(sys.argv[1:])}`".rstrip() + f"  \nCommit {rev}, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; the release server and bench/ws-load "
          "(the WebSocket clients) share the machine's 2 cores.\n")
    print("| backend | idle subscriptions | server RSS before → held (peak) | every connection alive | fan-out: subscribers × events | delivery p50 | p99 | max | all delivered (median) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for backend, held, fan in rows:
        print(f"| {name[backend]} | {held['connections']} ({held['accounts']} accounts), opened in {held['open_s']:.1f} s "
              f"| {held['rss_before_mib']:.1f} → {held['rss_held_mib']:.1f} MiB ({held['rss_hwm_mib']:.1f}) "
              f"| {held['heard']}/{held['expected_heard']} heard an event "
              f"| {fan['subscribers']} × {fan['rounds']} | {fan['p50_ms']} ms | {fan['p99_ms']} ms | {fan['max_ms']} ms "
              f"| {fan['last_delivery_median_ms']} ms |")


if __name__ == "__main__":
    main()
