#!/usr/bin/env python3
"""Reliability checks of user-api: bad input, faults and load. One command runs them all and
writes reliability/RESULTS.md, which records every figure with the command that produced it.

    reliability/run.py                          # everything, with a 10-minute soak (~20 min)
    reliability/run.py --quick                  # a CI-sized subset (~3 min): fewer cases, 1-minute soak
    reliability/run.py --suite audit,faults     # some suites only
    reliability/run.py --soak-minutes 2         # a shorter soak

Suites: audit (graphql-http's GraphQL-over-HTTP audit), schemathesis (OpenAPI and GraphQL),
sqlmap (REST login/register bodies, GraphQL), abuse (fragment bombs; sign-ins racing
revocations), faults (Redis and MariaDB stopped under load),
multi (three API processes sharing MariaDB and Redis), soak (about half of peak for N minutes),
scale (three API processes behind HAProxy on a Redis Cluster and a MariaDB primary/replica pair,
with a Redis master, the replica, replication and an API process failing under load).

It installs what it needs: schemathesis and sqlmap into reliability/.venv (pinned in
requirements.txt), graphql-http into reliability/node_modules (package-lock.json), and wrk,
MariaDB and Redis from Debian if missing; then builds target/release/user-api with
`cargo build --release`. Every suite runs against its own MariaDB and Redis, started on spare
loopback ports in a temporary folder and stopped at the end; the machine's shared instances
(3306, 6379) are not used. The scale suite starts its Redis Cluster (7000-7005) and MariaDB pair
(3307, 3308) with .ci/cluster/*, so those ports must be free, and HAProxy from Debian. Logs and tool reports go to reliability/out/ (not committed).
Exit status: 0 when every check passed.
"""

import argparse
import atexit
import datetime
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402
from common import HERE, OUT, ROOT, MariaDB, Redis, Section, Server  # noqa: E402

SUITES = ["audit", "schemathesis", "sqlmap", "abuse", "faults", "multi", "soak", "scale"]

# SHOULD audits of graphql-http that the server does not meet on purpose; the README's
# reliability section explains each. Keyed by audit id.
ACCEPTED_SHOULD = {}


class Context:
    def __init__(self, args):
        self.args = args
        self.quick = args.quick
        self.workdir = common.tmpdir("user-api-reliability-")
        self.out = OUT
        self.mariadb = None
        self.redis = None

    def accepted_should(self, failed):
        return all(r["id"] in ACCEPTED_SHOULD for r in failed)

    def services(self):
        if self.mariadb is None:
            print("starting a private MariaDB and Redis on spare loopback ports", flush=True)
            self.mariadb = MariaDB(self.workdir)
            self.redis = Redis(self.workdir)
        return self.mariadb, self.redis

    def api(self, name):
        """A server on a fresh database of the private MariaDB, sessions in the private Redis."""
        mariadb, redis = self.services()
        env = {"DATABASE_URL": mariadb.create_database(f"rel_{name}"), "REDIS_URL": redis.url,
               "REDIS_KEY_PREFIX": f"rel-{name}-{int(time.time())}:"}
        return Server(env, self.workdir, name)

    def close(self):
        for service in (self.redis, self.mariadb):
            if service is not None:
                try:
                    service.stop()
                except Exception:  # noqa: BLE001 - best effort at exit
                    pass
        if not self.args.keep:
            shutil.rmtree(self.workdir, ignore_errors=True)


def install(args):
    """Brings in the tools the suites use, as a fresh machine lacks them."""
    missing = [pkg for binary, pkg in [("wrk", "wrk"), ("mariadbd", "mariadb-server"), ("mysql", "mariadb-client"),
                                       ("redis-server", "redis-server"), ("redis-cli", "redis-tools"),
                                       ("node", "nodejs"), ("npm", "npm"), ("haproxy", "haproxy")]
               if not shutil.which(binary) and not os.path.exists(f"/usr/sbin/{binary}")]
    if missing:
        print(f"installing {' '.join(missing)} (Debian packages)", flush=True)
        subprocess.run(["apt-get", "update", "-q"], check=True, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "-q", *missing], check=True, capture_output=True)
    venv = os.path.join(HERE, ".venv")
    stamp = os.path.join(venv, "requirements.installed")
    requirements = os.path.join(HERE, "requirements.txt")
    if not os.path.exists(stamp) or open(stamp).read() != open(requirements).read():
        print("installing schemathesis and sqlmap into reliability/.venv", flush=True)
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
        subprocess.run([os.path.join(venv, "bin", "pip"), "install", "-q", "-r", requirements], check=True)
        shutil.copy(requirements, stamp)
    if not os.path.exists(os.path.join(HERE, "node_modules", "graphql-http")):
        print("installing graphql-http into reliability/node_modules", flush=True)
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=HERE, check=True, capture_output=True)
    if not args.skip_build:
        print("building target/release/user-api (cargo build --release)", flush=True)
        subprocess.run(["cargo", "build", "--release", "-q"], cwd=ROOT, check=True)


def run_suite(name, ctx):
    import abuse
    import bad_input
    import faults
    import scale
    import soak

    titles = {
        "audit": ("GraphQL-over-HTTP audit (graphql-http auditServer)",
                  "graphql-http's server audit suite against `/graphql`; each result is MUST, SHOULD or MAY."),
        "schemathesis": ("schemathesis: OpenAPI and GraphQL",
                         "Property-based fuzzing of every REST operation in `/openapi.json` (checks `not_a_server_error`, "
                         "`response_schema_conformance`) and of every GraphQL root field. For GraphQL the check is "
                         "`graphql_no_server_fault` from reliability/st_hooks.py: schemathesis's own `not_a_server_error` "
                         "counts every GraphQL error entry as a server fault, while the contract reports expected "
                         "outcomes there (UNAUTHENTICATED, BAD_USER_INPUT, CONFLICT); the hook fails on HTTP 5xx, a "
                         "body that is not a GraphQL response, an error without `extensions.code`, and "
                         "INTERNAL_SERVER_ERROR or SERVICE_UNAVAILABLE. "
                         "Each run has its own freshly registered user's token; the operations that revoke a token "
                         "(logout, delete) run separately so they do not turn the rest into 401s."),
        "sqlmap": ("sqlmap: SQL injection",
                   "sqlmap against the REST login and register JSON bodies, GraphQL variables and documents, and the "
                   "REST path and query parameters. Judged by sqlmap's injection log (the `log` file in its output "
                   "folder, written only when it finds an injection point) and its report, not its exit code."),
        "abuse": ("Abuse: fragment bombs, and sign-ins racing revocations",
                  "Fragment bombs (each fragment spreads the next one twice: 2^levels fields once expanded, "
                  "about 1 KB of text) by POST and GET without a token, then 8 clients sending them back to back "
                  "while `/healthz` is timed. Then many overlapping trials of a login with the old password "
                  "against a password change, and of a refresh against logoutAll; a session the race leaves "
                  "working (its access token answers `me`, or its refresh token refreshes) is a survivor. On "
                  "MariaDB + Redis and on SQLite."),
        "faults": ("Faults: Redis and MariaDB stopped under load",
                   "Both services are the run's own, on spare loopback ports. A call counts as a success only when "
                   "it returns the user (REST 200 with the body, GraphQL `data.me`); GraphQL answers errors with "
                   "HTTP 200 and `extensions.code`, as the contract says, so its failures are listed by code."),
        "multi": ("Several API processes sharing MariaDB and Redis",
                  "Three user-api processes on different ports; every check calls the processes right after the "
                  "change, with no pause."),
        "scale": ("Scale-out: three API processes behind HAProxy, on a Redis Cluster and a MariaDB primary/replica pair",
                  "Everything goes through HAProxy, as clients would. A call counts as a success only when it returns "
                  "what was asked (the user, a 204 for a logout). A revoked session is checked afterwards with `me`, "
                  "which must answer UNAUTHENTICATED."),
        "soak": (f"Soak: {ctx.args.soak_minutes:g} minute{'' if ctx.args.soak_minutes == 1 else 's'} at about half of peak",
                 "wrk drives a read mix at about half the measured peak throughput, paced by wrk's per-connection "
                 "delay; the server's RSS (VmRSS) is sampled every 5 s."),
    }
    title, intro = titles[name]
    section = Section(title, intro)
    print(f"\n== {name}", flush=True)
    if name == "soak" and ctx.args.soak_minutes <= 0:
        section.skipped = "--soak-minutes 0 (the --quick default); run `reliability/run.py --suite soak` for it."
        return section
    started = time.monotonic()
    try:
        if name in ("audit", "schemathesis", "sqlmap"):
            server = ctx.api(name)
            try:
                getattr(bad_input, name)(ctx, section, server)
                section.check("the API process survived", server.alive())
            finally:
                server.stop()
            if name == "sqlmap" and not ctx.quick:
                # The same core targets on the embedded SQLite backend (sessions in SQLite).
                server = Server({"DATABASE_URL": "sqlite://sqlmap/users.db"}, ctx.workdir, "sqlmap-sqlite")
                try:
                    bad_input.sqlmap(ctx, section, server, "SQLite", ("REST login body", "REST register body",
                                     "GraphQL user(username:) variable", "REST GET /users?limit&after query"))
                    section.check("the API process survived (SQLite)", server.alive())
                finally:
                    server.stop()
        elif name == "abuse":
            abuse.run(ctx, section)
        elif name == "scale":
            scale.scale(ctx, section)
        elif name in ("faults", "multi"):
            ctx.services()
            getattr(faults, name)(ctx, section)
        else:
            ctx.services()
            soak.soak(ctx, section)
    except Exception as e:  # noqa: BLE001 - a crashed suite is a failed suite, and the run goes on
        traceback.print_exc()
        section.check(f"{name} ran to the end", False, f"{type(e).__name__}: {e}")
    section.note(f"Suite time: {time.monotonic() - started:.0f} s.")
    return section


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--suite", default=",".join(SUITES), help=f"comma-separated, from: {', '.join(SUITES)} (default: all)")
    p.add_argument("--quick", action="store_true", help="CI-sized: fewer cases, shorter faults, a 1-minute soak")
    p.add_argument("--soak-minutes", type=float, default=None, help="soak length (default 10; 1 with --quick)")
    p.add_argument("--results", default=None, help="where to write the results (default reliability/RESULTS.md; "
                   "reliability/out/RESULTS-quick.md with --quick)")
    p.add_argument("--skip-build", action="store_true", help="use the existing target/release/user-api")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder (server, MariaDB and Redis logs)")
    args = p.parse_args()
    if args.soak_minutes is None:
        args.soak_minutes = 1 if args.quick else 10
    suites = [s.strip() for s in args.suite.split(",") if s.strip()]
    unknown = [s for s in suites if s not in SUITES]
    if unknown:
        p.error(f"unknown suite(s): {', '.join(unknown)}")
    results = args.results or (os.path.join(OUT, "RESULTS-quick.md") if args.quick else os.path.join(HERE, "RESULTS.md"))

    started = datetime.datetime.now(datetime.timezone.utc)
    load_at_start = common.loadavg()
    install(args)
    os.makedirs(OUT, exist_ok=True)
    ctx = Context(args)
    atexit.register(ctx.close)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    sections = [run_suite(name, ctx) for name in suites]
    ctx.close()

    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "src", "Cargo.toml", "Cargo.lock"], cwd=ROOT,
                           capture_output=True, text=True).stdout.strip()
    tools = common.versions()
    tools["schemathesis"] = open(os.path.join(HERE, "requirements.txt")).read().split("schemathesis==")[1].split()[0]
    tools["sqlmap"] = open(os.path.join(HERE, "requirements.txt")).read().split("sqlmap==")[1].split()[0]
    tools["graphql-http"] = json.load(open(os.path.join(HERE, "package.json")))["dependencies"]["graphql-http"]
    common.write_results(results, sections, sys.argv[1:], started, rev + (" with uncommitted changes to src/" if dirty else ""),
                         tools, load_at_start)
    failed = [s.title for s in sections if not s.skipped and not s.passed]
    skipped = sum(1 for s in sections if s.skipped)
    print(f"\nwrote {os.path.relpath(results, ROOT)}")
    print(f"{len(sections) - len(failed) - skipped} passed, {len(failed)} failed" + (f", {skipped} skipped" if skipped else ""))
    if failed:
        print("failed: " + "; ".join(failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
