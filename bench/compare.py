#!/usr/bin/env python3
"""Before and after: the `me`, login and register scenarios of bench/run.py for several builds of the
server, run in turn round by round on each backend, so that every build meets the same moments
of a machine whose speed drifts. Writes (or replaces) a "Before and after" section of
bench/RESULTS.md.

    bench/compare.py --build before=54546e4 --build after=HEAD
    bench/compare.py --build before=HEAD~3 --build after=worktree --title "the refactoring"

A build is LABEL=REV: a git revision (checked out into a temporary worktree and built with
`cargo build --release` into target/compare, so that builds share compiled dependencies), or
`worktree` for the files as they are now. Each build's server gets a database (and Redis
prefix) of its own, so newer migrations never meet an older binary.
"""

import argparse
import datetime
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, BENCH)
import run as bench  # noqa: E402
from run import LOGIN_BODY, ME_QUERY, PASSWORD, ROOT, Server, fmt_ms, fresh_database, http, median, run_once, sh  # noqa: E402


def build(label, rev, workdir):
    """The path of a release binary of `rev`, copied into `workdir`."""
    target = os.path.join(ROOT, "target", "compare")
    if rev == "worktree":
        src = ROOT
        env = dict(os.environ)
    else:
        src = os.path.join(workdir, f"src-{label}")
        sh(["git", "worktree", "add", "--detach", src, rev], cwd=ROOT)
        env = {**os.environ, "CARGO_TARGET_DIR": target}
    print(f"building {label} ({rev})", flush=True)
    subprocess.run(["cargo", "build", "--release", "-q"], cwd=src, env=env, check=True)
    built = os.path.join(env.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release", "user-api")
    binary = os.path.join(workdir, f"user-api-{label}")
    shutil.copy(built, binary)
    commit = sh(["git", "rev-parse", "--short", "HEAD"], cwd=src).strip()
    if rev != "worktree":
        sh(["git", "worktree", "remove", "--force", src], cwd=ROOT)
    return binary, commit


def start(label, binary, backend, args, workdir):
    folder = os.path.join(workdir, f"{backend}-{label}")
    os.makedirs(folder)
    if backend == "mysql":
        db = f"user_api_cmp_{label}"
        env = {"DATABASE_URL": fresh_database(args.mysql, db), "REDIS_URL": args.redis,
               "REDIS_KEY_PREFIX": f"cmp-{label}-{int(time.time())}:"}
    else:
        env = {"DATABASE_URL": "sqlite://data/users.db"}
    server = Server(env, folder, name=label, binary=binary)
    body = json.dumps({"query": "mutation($i: RegisterInput!) { register(input: $i) { accessToken } }",
                       "variables": {"i": {"username": "bench", "email": "bench@example.com", "password": PASSWORD}}})
    _, text = http("POST", server.url + "/graphql", body)
    return server, json.loads(text)["data"]["register"]["accessToken"]


def compare_backend(backend, builds, args, workdir):
    print(f"\n== {backend}", flush=True)
    servers = [start(label, binary, backend, args, workdir) for label, binary, _ in builds]
    scenarios = [
        ("GraphQL me", 32, lambda s, t: (s.url + "/graphql", "post.lua", {"BODY": ME_QUERY, "TOKEN": t})),
        ("REST GET /users/me", 32, lambda s, t: (s.url + "/users/me", "get.lua", {"TOKEN": t})),
        ("login", 8, lambda s, t: (s.url + "/graphql", "post.lua", {"BODY": LOGIN_BODY})),
        # A new user per request (names unique per server and round); each queues its
        # verification mail where the build has one.
        ("register", 8, lambda s, t: (s.url + "/graphql", "register.lua", {"RUN": str(s.port)})),
    ]
    runs = {(name, label): [] for name, _, _ in scenarios for label, _, _ in builds}
    for i in range(args.repeat):
        for name, connections, spec in scenarios:
            for (label, _, _), (server, token) in zip(builds, servers):
                url, script, env = spec(server, token)
                r = run_once(server, url, script, connections, args.duration, env, i)
                runs[(name, label)].append(r)
                print(f"  round {i + 1} {name:<20} {label:<10} {r['rps']:>8.0f} req/s  p99 {fmt_ms(r['p99'])}", flush=True)
    for server, _ in servers:
        server.stop()
    return scenarios, runs


def section(args, builds, results, started):
    first = builds[0][0]
    lines = [
        f"## Before and after: {args.title}",
        "",
        f"Command: `{shlex.join(['bench/compare.py'] + sys.argv[1:])}`  ",
        f"Date: {started:%Y-%m-%d %H:%M} UTC; builds: " + ", ".join(f"{label} = {commit}" for label, _, commit in builds) + ".  ",
        f"Each build's server runs on its own database; in each of {args.repeat} rounds every scenario runs "
        f"{args.duration} s against each build in turn. Figures are medians of the rounds; the ratio is the "
        f"median of the rounds' ratios to {first}, which met the same moments of the machine.",
        "",
    ]
    for backend, (scenarios, runs) in results:
        lines += [f"### {'MySQL + Redis' if backend == 'mysql' else 'embedded SQLite'}", "",
                  "| scenario | connections | build | req/s (each round) | p50 | p99 | req/s vs " + first + " |",
                  "|---|---:|---|---:|---:|---:|---:|"]
        for name, connections, _ in scenarios:
            base = runs[(name, first)]
            for label, _, _ in builds:
                mine = runs[(name, label)]
                each = "/".join(f"{r['rps']:.0f}" for r in mine)
                ratios = [m["rps"] / b["rps"] for m, b in zip(mine, base) if b["rps"]]
                lines.append(f"| {name} | {connections} | {label} | {median(r['rps'] for r in mine):.0f} ({each}) | "
                             f"{fmt_ms(median(r['p50'] for r in mine))} | {fmt_ms(median(r['p99'] for r in mine))} | "
                             f"{median(ratios):.1%} |")
        lines.append("")
    return lines


def write(args, lines):
    """Replaces the section of the same title in RESULTS.md, or adds it at the end."""
    text = open(args.out).read() if os.path.exists(args.out) else "# Benchmark results\n"
    heading = lines[0]
    blocks = text.split("\n## ")
    kept = [blocks[0]] + [b for b in blocks[1:] if not ("## " + b).startswith(heading)]
    text = "\n## ".join(kept).rstrip("\n") + "\n\n" + "\n".join(lines)
    with open(args.out, "w") as f:
        f.write(text)
    print(f"\nwrote {args.out}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--build", action="append", required=True, help="LABEL=REV (a git revision, or `worktree`)")
    p.add_argument("--title", default=None, help="the section's title (default: the labels)")
    p.add_argument("--backend", choices=["mysql", "sqlite", "both"], default="both")
    p.add_argument("--duration", type=int, default=10)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--mysql", default="mysql://root@127.0.0.1:3306")
    p.add_argument("--redis", default="redis://127.0.0.1:6379")
    p.add_argument("--out", default=os.path.join(BENCH, "RESULTS.md"))
    args = p.parse_args()
    pairs = [b.split("=", 1) for b in args.build]
    if any(len(pair) != 2 for pair in pairs) or len(pairs) < 2:
        p.error("give at least two builds as LABEL=REV")
    args.title = args.title or " → ".join(label for label, _ in pairs)
    started = datetime.datetime.now(datetime.timezone.utc)
    bench.ensure_wrk()
    with tempfile.TemporaryDirectory() as workdir:
        builds = [(label, *build(label, rev, workdir)) for label, rev in pairs]
        results = [(backend, compare_backend(backend, builds, args, workdir))
                   for backend in (["mysql", "sqlite"] if args.backend == "both" else [args.backend])]
    write(args, section(args, builds, results, started))


if __name__ == "__main__":
    main()
