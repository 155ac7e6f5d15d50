#!/usr/bin/env python3
"""The server's work per request, counted in CPU instructions: the release server runs under
valgrind's callgrind, which counts every instruction it executes (all threads), and each
scenario's requests are counted on their own. Unlike req/s on a shared 2-core machine, whose
rounds drift by tens of percent, the count is the same from run to run for the same binary and
requests, so two ways of asking the same thing can be told apart by a few percent.

    bench/instructions.py                      # both backends, 500 requests per scenario
    bench/instructions.py --backend sqlite --requests 200
    bench/instructions.py --backend mysql --keep /tmp/dumps   # then callgrind_annotate a dump

Scenarios: `me` by POST, `me` as an automatic persisted query sent by GET as its hash alone,
and REST `/users/me`, one request at a time on one keep-alive connection. With --sign-ins N,
also N plain logins (`login`, users without MFA) against N two-step sign-ins (`login` →
MFA_REQUIRED → `loginSecondFactor` with a fresh TOTP code), each user signing in once: what the
second step adds to a login in the API's own work, argon2 included, repeatable to the
instruction. Prints a Markdown section for bench/RESULTS.md.

    bench/instructions.py --sign-ins 10 --requests 200
"""

import argparse
import glob
import json
import os
import re
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "reliability"))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from common import BIN, Client, Server, register, tmpdir  # noqa: E402
import run  # noqa: E402
import mfa_login  # noqa: E402


def callgrind(binary, out_dir):
    """A launcher: the server under callgrind, counting nothing until told to."""
    path = os.path.join(out_dir, "under-callgrind.sh")
    with open(path, "w") as f:
        f.write("#!/bin/sh\nexec valgrind --tool=callgrind --instr-atstart=no "
                f"--callgrind-out-file={out_dir}/callgrind.out.%p {binary} \"$@\"\n")
    os.chmod(path, 0o755)
    return path


def control(pid, *args):
    subprocess.run(["callgrind_control", *args, str(pid)], check=True, capture_output=True)


def counted(pid, out_dir, send, requests, keep=None):
    """Instructions the server executed while `send` made `requests` requests; with `keep`, the
    dump is moved there (for callgrind_annotate) rather than deleted."""
    before = set(glob.glob(os.path.join(out_dir, "callgrind.out.*")))
    control(pid, "-z")
    control(pid, "-i", "on")
    for _ in range(requests):
        send()
    # Dumped before the counting stops: callgrind reads its commands while it instruments.
    control(pid, "-d")
    control(pid, "-i", "off")
    for _ in range(100):
        dumps = set(glob.glob(os.path.join(out_dir, "callgrind.out.*"))) - before
        if dumps:
            break
        time.sleep(0.1)
    total = 0
    for dump in dumps:
        # One file per thread or one in all, depending on valgrind's options: sum them.
        with open(dump) as f:
            m = re.search(r"^summary:\s+(\d+)", f.read(), re.M)
        total += int(m.group(1)) if m else 0
        if keep:
            os.replace(dump, keep)
        else:
            os.remove(dump)
    return total


#: The sign-in scenarios, counted per sign-in (both requests of a two-step one).
SIGN_INS = ("login, password only", "login with a second factor (TOTP)")


def sign_in_scenarios(client, n):
    """Users for two counts of each sign-in scenario, registered (and enrolled) before anything
    is counted, and a warm-up of each; the two scenarios, each signing in the next user."""
    plain = [f"plain{i:03d}" for i in range(2 * n + 2)]
    for name in plain:
        register(client, name)
    mfa = [mfa_login.enrol(client, f"mfa{i:03d}") for i in range(2 * n + 2)]

    def plain_sign_in():
        if not mfa_login.plain_login(client, plain.pop()):
            raise RuntimeError(f"a plain login failed: {mfa_login.PROBLEMS}")

    def mfa_sign_in():
        if not mfa_login.mfa_login(client, mfa.pop()):
            raise RuntimeError(f"a two-step sign-in failed: {mfa_login.PROBLEMS}")

    for _ in range(2):
        plain_sign_in()
        mfa_sign_in()
    return [(SIGN_INS[0], plain_sign_in), (SIGN_INS[1], mfa_sign_in)]


def measure(backend, args):
    workdir = tmpdir(f"instr-{backend}-")
    if backend == "mysql":
        db = "user_api_bench_instr"
        env = {"DATABASE_URL": run.fresh_database(args.mysql, db), "REDIS_URL": args.redis, "REDIS_KEY_PREFIX": f"instr{int(time.time())}:"}
    else:
        env = {"DATABASE_URL": "sqlite://data/users.db"}
    # Under valgrind everything is tens of times slower: the pools wait longer.
    env["POOL_TIMEOUT"] = "30"
    if args.sign_ins:
        env.update(mfa_login.rate_limits_off())
    server = Server(env, workdir, binary=callgrind(args.binary, workdir))
    try:
        client = Client(server.url, timeout=120)
        token = register(client, "instr")
        status, _, text = client.request("POST", "/graphql", run.APQ_REGISTER, token=token)
        assert status == 200 and "errors" not in json.loads(text), text
        # The launcher execs valgrind, which runs the server in its own process.
        pid = server.proc.pid

        def post():
            status, _, _ = client.request("POST", "/graphql", run.ME_QUERY, token=token)
            assert status == 200

        def get():
            status, _, text = client.request("GET", "/graphql" + run.APQ_GET_QUERY, token=token)
            assert status == 200 and '"errors"' not in text, text

        def rest():
            status, _, _ = client.request("GET", "/users/me", token=token)
            assert status == 200

        scenarios = [("GraphQL me by POST", post), ("GraphQL me, persisted, by GET", get), ("REST GET /users/me", rest)]
        for _, send in scenarios:  # warm every cache first
            for _ in range(20):
                send()
        if args.sign_ins:
            scenarios += sign_in_scenarios(client, args.sign_ins)
        rows = {}
        # Twice each, in two orders: the count should not depend on what ran before.
        for i, (name, send) in enumerate(scenarios + scenarios[::-1]):
            requests = args.sign_ins if name in SIGN_INS else args.requests
            keep = None
            if args.keep:
                os.makedirs(args.keep, exist_ok=True)
                slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
                keep = os.path.join(args.keep, f"callgrind.{backend}.{slug}.{i // len(scenarios)}")
            rows.setdefault(name, []).append(counted(pid, workdir, send, requests, keep) / requests)
        return rows
    finally:
        server.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=["mysql", "sqlite", "both"], default="both")
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--mysql", default="mysql://root@127.0.0.1:3306")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379")
    parser.add_argument("--binary", default=BIN)
    parser.add_argument("--sign-ins", type=int, default=0, metavar="N",
                        help="also count N plain logins against N two-step (TOTP) sign-ins")
    parser.add_argument("--keep", metavar="DIR", help="keep each scenario's callgrind dump in DIR, for callgrind_annotate")
    args = parser.parse_args()
    rev = run.sh(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"]).strip()
    backends = ["mysql", "sqlite"] if args.backend == "both" else [args.backend]
    results = {b: measure(b, args) for b in backends}
    name = {"mysql": "MySQL + Redis", "sqlite": "embedded SQLite"}
    print("\n## Instructions per request (bench/instructions.py)\n")
    print(f"Command: `bench/instructions.py {' '.join(sys.argv[1:])}`".rstrip() + f"  \nCommit {rev}, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; the release server under valgrind's callgrind, "
          f"{args.requests} requests per scenario, one at a time, each scenario counted twice (in two orders).\n")
    print("| backend | scenario | instructions per request (each count) | ÷ by POST |")
    print("|---|---|---:|---:|")
    for backend, rows in results.items():
        post = sum(rows["GraphQL me by POST"]) / 2
        for scenario, counts in rows.items():
            if scenario in SIGN_INS:
                continue
            mean = sum(counts) / len(counts)
            each = " / ".join(f"{c:,.0f}" for c in counts)
            print(f"| {name[backend]} | {scenario} | {mean:,.0f} ({each}) | {mean / post:.1%} |")
    if args.sign_ins:
        print(f"\nSign-ins ({args.sign_ins} per count, each user once, every rate limit off), instructions per sign-in:\n")
        print("| backend | scenario | instructions per sign-in (each count) | ÷ by a plain login |")
        print("|---|---|---:|---:|")
        for backend, rows in results.items():
            plain = sum(rows[SIGN_INS[0]]) / 2
            for scenario in SIGN_INS:
                counts = rows[scenario]
                mean = sum(counts) / len(counts)
                each = " / ".join(f"{c:,.0f}" for c in counts)
                print(f"| {name[backend]} | {scenario} | {mean:,.0f} ({each}) | {mean / plain:.2%} |")


if __name__ == "__main__":
    main()
