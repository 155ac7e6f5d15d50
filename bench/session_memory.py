#!/usr/bin/env python3
"""Redis memory per session: a release server on MySQL and one Redis registers `--users`
users and signs them in `--sessions` times in all, then the run's keys are weighed two ways:
Redis's `used_memory` before and after the sign-ins, and the sum of `MEMORY USAGE` over every
key under the run's prefix (the registrations' sessions included). What Redis holds per
session: one key (its creation and expiry times, and the client's User-Agent when it sent
one), and its entry in the user's session index, a sorted set. Refresh tokens live in the
database, not in Redis. Nothing else may write to that Redis meanwhile for the first figure
to hold.

    bench/session_memory.py                    # 2,000 sign-ins of 20 users, no User-Agent
    bench/session_memory.py --users 1000 --user-agent "Mozilla/5.0 …"   # 2 sign-ins each, a browser's

Prints a Markdown section for bench/RESULTS.md; SCALING.md computes sessions per GiB from it.
"""

import argparse
import json
import os
import shlex
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "reliability"))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from common import Client, Server, login, register, tmpdir  # noqa: E402
import run  # noqa: E402


class AgentClient(Client):
    """A client that sends `user_agent` (when set) with every request, as a browser would."""

    def __init__(self, base, user_agent):
        super().__init__(base)
        self.user_agent = user_agent

    def request(self, method, path, body=None, token=None, headers=None):
        agent = {"user-agent": self.user_agent} if self.user_agent else {}
        return super().request(method, path, body, token, {**agent, **(headers or {})})


def redis(url, *args):
    host, port = url.split("://", 1)[1].split("/")[0].split(":")
    return subprocess.run(["redis-cli", "-h", host, "-p", port, *args], check=True, capture_output=True, text=True).stdout


def used_memory(url):
    info = redis(url, "info", "memory")
    return int(next(line.split(":")[1] for line in info.splitlines() if line.startswith("used_memory:")))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mysql", default="mysql://root@127.0.0.1:3306")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379")
    parser.add_argument("--sessions", type=int, default=2000, help="sign-ins after the registrations (default 2000)")
    parser.add_argument("--users", type=int, default=20, help="users registered, each with a session of its own (default 20)")
    parser.add_argument("--user-agent", default="", help="User-Agent header of every request (default: none)")
    args = parser.parse_args()
    users = args.users
    rev = run.sh(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"]).strip()
    prefix = f"bench-mem-{int(time.time())}:"
    server = Server({"DATABASE_URL": run.fresh_database(args.mysql, "user_api_bench_memory"), "REDIS_URL": args.redis,
                     "REDIS_KEY_PREFIX": prefix}, tmpdir("memory-bench-"), name="memory")
    try:
        client = AgentClient(server.url, args.user_agent)
        names = [f"mem{i}" for i in range(users)]
        for name in names:
            register(client, name)
        before_keys = len(redis(args.redis, "--scan", "--pattern", prefix + "*").split())
        before = used_memory(args.redis)
        per_thread = args.sessions // 4

        def sign_in(t):
            c = AgentClient(server.url, args.user_agent)
            for n in range(per_thread):
                login(c, names[(t * per_thread + n) % users])
            c.close()

        threads = [threading.Thread(target=sign_in, args=(t,)) for t in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        sessions = per_thread * 4
        after = used_memory(args.redis)
        keys = redis(args.redis, "--scan", "--pattern", prefix + "*").split()
        weighed = 0
        for i in range(0, len(keys), 500):
            pipe = "\n".join(f"MEMORY USAGE {k}" for k in keys[i:i + 500])
            out = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", args.redis.rsplit(":", 1)[1].split("/")[0]],
                                 input=pipe, check=True, capture_output=True, text=True).stdout
            weighed += sum(int(x) for x in out.split() if x.isdigit())
        info = json.loads(run.http("GET", server.url + "/readyz")[1] or "{}")
    finally:
        server.stop()
    per_used = (after - before) / sessions
    per_keys = weighed / (sessions + users)
    gib = 1024 ** 3
    print("\n## Redis memory per session (bench/session_memory.py)\n")
    command = " ".join(["bench/session_memory.py", shlex.join(sys.argv[1:])]).strip()
    agent = f"User-Agent of {len(args.user_agent)} bytes" if args.user_agent else "no User-Agent"
    print(f"Command: `{command}`  \nCommit {rev}, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, Redis {redis(args.redis, 'info', 'server').split('redis_version:')[1].split()[0]}"
          f", server ready: {info.get('status', '?')}. {users} users registered (a session each), then {sessions} sign-ins "
          f"({agent}); a session is a key and an entry in its user's session index (refresh tokens are in the database); "
          f"keys under the run's prefix: {before_keys} before the sign-ins, {len(keys)} after. `used_memory` growth is "
          f"per sign-in; `MEMORY USAGE` is over all {sessions + users} sessions and their users' indexes.\n")
    print("| measure | bytes per session | sessions per GiB |")
    print("|---|---:|---:|")
    print(f"| `used_memory` growth | {per_used:.0f} | {gib / per_used:,.0f} |")
    print(f"| sum of `MEMORY USAGE` over the run's keys | {per_keys:.0f} | {gib / per_keys:,.0f} |")


if __name__ == "__main__":
    main()
