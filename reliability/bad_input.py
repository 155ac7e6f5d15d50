"""Bad-input suites: schemathesis against /openapi.json and /graphql, the graphql-http
GraphQL-over-HTTP audit, and sqlmap against the login and register bodies and /graphql.

Not run by itself: `reliability/run.py --suite schemathesis,audit,sqlmap` runs these.
"""

import json
import os
import re
import shutil
import subprocess

from common import HERE, OUT, PASSWORD, ROOT, Client, redact, register, shell_join

VENV_BIN = os.path.join(HERE, ".venv", "bin")


def run_logged(cmd, log_path, secrets=(), timeout=None, cwd=None, env=None):
    """Runs `cmd`, keeping its output in `log_path`; returns (exit code, output)."""
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=cwd,
                              env={**os.environ, **(env or {})})
        out, code = proc.stdout + proc.stderr, proc.returncode
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        out, code = out + f"\n[timed out after {timeout} s]", -1
    with open(log_path, "w") as f:
        f.write(redact(out, secrets))
    return code, out


def metrics_by_status(base):
    """Sums http_requests_total by status class from /metrics: {"2xx": n, …}."""
    status, _, text = Client(base).request("GET", "/metrics")
    totals = {}
    for line in text.splitlines():
        if line.startswith("http_requests_total{"):
            m = re.search(r'status="(\d)\d\d"', line)
            if m:
                key = f"{m.group(1)}xx"
                totals[key] = totals.get(key, 0) + float(line.rsplit(" ", 1)[1])
    return totals


def delta(after, before):
    return {k: int(after.get(k, 0) - before.get(k, 0)) for k in sorted(set(after) | set(before)) if after.get(k, 0) != before.get(k, 0)}


def fmt_counts(counts):
    return ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "none"


# --- schemathesis --------------------------------------------------------------------------


def schemathesis(ctx, section, server):
    st = os.path.join(VENV_BIN, "st")
    client = Client(server.url)
    out = os.path.join(OUT, "schemathesis")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    n = 15 if ctx.quick else 60
    # --max-time: fuzzing repeats until it is spent. The revoking operations answer 401 after
    # their first success, so they get a quarter of it.
    seconds = 20 if ctx.quick else 120
    common = ["--max-examples", str(n), "--seed", "1", "--no-color", "--workers", "2", "--request-timeout", "20",
              "--generation-database", "none", "--suppress-health-check", "too_slow,filter_too_much"]

    runs = [
        # Everything but the two operations that end the token's session, which would turn
        # every later authenticated case into a 401 …
        ("openapi", [st, "run", f"{server.url}/openapi.json", "--checks", "not_a_server_error,response_schema_conformance",
                     "--exclude-operation-id", "logout", "--exclude-operation-id", "delete_me"]),
        # … and those two on their own, with a token of their own.
        ("openapi-revoking", [st, "run", f"{server.url}/openapi.json", "--checks", "not_a_server_error,response_schema_conformance",
                              "--include-operation-id", "logout", "--include-operation-id", "delete_me"]),
    ]
    gql_source = graphql_location(server, client)
    # schemathesis's not_a_server_error counts every GraphQL error entry (UNAUTHENTICATED for a
    # revoked token, BAD_USER_INPUT, …) as a server fault; st_hooks.py checks for real ones.
    gql_checks = "graphql_no_server_fault"
    runs += [
        ("graphql", [st, "run", *gql_source, "--checks", gql_checks,
                     "--exclude-name", "Mutation.logout", "--exclude-name", "Mutation.deleteMe"]),
        ("graphql-revoking", [st, "run", *gql_source, "--checks", gql_checks,
                              "--include-name", "Mutation.logout", "--include-name", "Mutation.deleteMe"]),
    ]
    section.note("schemathesis warnings that are expected here, not defects: `validation_mismatch` where the "
                 "server checks more than JSON Schema states (POST /users/login: generated credentials are wrong, "
                 "so 401; PUT /users: at least one field, and email syntax as the email_address crate checks it); "
                 "`missing_auth` on DELETE /users (after the first call deletes the account, its token answers "
                 "401); `missing_test_data` on GraphQL mutations whose generated arguments never name a real "
                 "account or token.")
    if gql_source[0].endswith("schema.graphql"):
        section.note("The server refused schemathesis's introspection query, so the GraphQL runs read the checked-in schema.graphql.")
    all_ok = True
    for i, (name, cmd) in enumerate(runs):
        token = register(client, f"st_{name.replace('-', '_')}_{i}")
        report = os.path.join(out, f"{name}.json")
        budget = seconds // 4 if name.endswith("revoking") else seconds
        full = cmd + common + ["--max-time", str(budget), "-H", f"Authorization: Bearer {token}", "--report", "json,junit",
                               "--report-json-path", report, "--report-junit-path", os.path.join(out, f"{name}.junit.xml")]
        env = {"SCHEMATHESIS_HOOKS": os.path.join(HERE, "st_hooks.py")} if name.startswith("graphql") else {}
        shown = "".join(f"{k}={v} " for k, v in env.items()) + shell_join(full)
        c = section.command(redact(shown, [token]).replace(ROOT + "/", ""))
        before = metrics_by_status(server.url)
        code, text = run_logged(full, os.path.join(out, f"{name}.log"), [token], timeout=budget + 300, env=env, cwd=out)
        traffic = delta(metrics_by_status(server.url), before)
        summary = summarise_st(report, text)
        section.figure(f"{name}: operations tested / test cases", f"{summary['operations']} / {summary['cases']}", c)
        section.figure(f"{name}: responses by status class (server's /metrics)", fmt_counts(traffic), c)
        section.figure(f"{name}: failures", summary["failures_text"], c)
        section.figure(f"{name}: schemathesis warnings", st_warnings(report), c)
        ok = code == 0 and summary["failures"] == 0 and traffic.get("5xx", 0) == 0
        what = "no 5xx, no schema violation" if name.startswith("openapi") else "no 5xx, no server-fault error"
        all_ok &= section.check(f"schemathesis {name}: {what}", ok,
                                f"exit {code}; see reliability/out/schemathesis/{name}.log")
    return all_ok


def graphql_location(server, client):
    """The endpoint's URL when it answers the standard introspection query (what schemathesis
    sends), else the checked-in SDL plus --url."""
    query = subprocess.run(["node", "-e", "console.log(require('graphql').getIntrospectionQuery())"],
                           capture_output=True, text=True, cwd=HERE, check=True).stdout
    status, body = client.gql(query)
    if status == 200 and not body.get("errors"):
        return [f"{server.url}/graphql"]
    return [os.path.join(ROOT, "schema.graphql"), "--url", f"{server.url}/graphql"]


def summarise_st(report_path, text):
    """The run's figures from its JSON report; without a report the run counts as failed."""
    try:
        with open(report_path) as f:
            operations, cases, failures, lines = parse_st_report(json.load(f))
    except (OSError, ValueError, KeyError, TypeError) as e:
        operations, cases, failures, lines = 0, 0, 1, [f"no usable report ({e}); see the log"]
    return {
        "operations": operations,
        "cases": cases,
        "failures": failures,
        "failures_text": "none" if not failures else f"{failures}: " + "; ".join(lines[:6]),
    }


def parse_st_report(report):
    """Operations tested, test cases, unique failures and their descriptions from
    schemathesis 4's JSON run report."""
    operations = report["operations"]["tested"]
    cases = report["test_cases"]["generated"]
    failures = report["test_cases"]["unique_failures"]
    lines = [f"{f.get('code')} {f.get('title')} ×{f.get('count')} in {', '.join(f.get('operations', []))}"
             for f in report.get("failures", [])]
    lines += [f"error: {e}" for e in report.get("errors", [])]
    return operations, cases, failures + len(report.get("errors", [])), lines


def st_warnings(report_path):
    """schemathesis's warnings (e.g. a schema looser than the API's validation), as text."""
    try:
        with open(report_path) as f:
            warnings = json.load(f).get("warnings") or {}
    except (OSError, ValueError):
        return "–"
    found = [f"{kind}: {', '.join(map(str, items))}" for kind, items in warnings.items() if items]
    return "; ".join(found) or "none"


# --- graphql-http audit --------------------------------------------------------------------


def audit(ctx, section, server):
    out = os.path.join(OUT, "audit")
    os.makedirs(out, exist_ok=True)
    cmd = ["node", os.path.join(HERE, "audit.mjs"), f"{server.url}/graphql"]
    c = section.command(shell_join(cmd).replace(ROOT + "/", ""))
    code, text = run_logged(cmd, os.path.join(out, "audit.log"), cwd=HERE)
    results = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    audits = [r for r in results if "summary" not in r]
    by_level = {}
    for r in audits:
        level = r["name"].split(" ", 1)[0]
        by_level.setdefault(level, {}).setdefault(r["status"], 0)
        by_level[level][r["status"]] += 1
    for level in ("MUST", "SHOULD", "MAY"):
        section.figure(f"{level} audits", fmt_counts(by_level.get(level, {})), c)
    not_ok = [r for r in audits if r["status"] != "ok"]
    for r in not_ok:
        section.note(f"`{r['status']}` {r['name']} (`{r['id']}`): {r.get('reason', '')} — answered {r.get('httpStatus')} {r.get('contentType')}")
    must_failed = [r for r in not_ok if r["name"].startswith("MUST")]
    should_failed = [r for r in not_ok if r["name"].startswith("SHOULD")]
    ok = section.check("every MUST audit passes", audits and not must_failed, f"{len(must_failed)} failed of {sum(by_level.get('MUST', {}).values())}")
    section.check("every SHOULD audit passes (or is explained in the README)", not should_failed or ctx.accepted_should(should_failed),
                  f"{len(should_failed)} not met" + (": " + ", ".join(r['id'] for r in should_failed) if should_failed else ""))
    return ok


# --- sqlmap --------------------------------------------------------------------------------


def sqlmap(ctx, section, server, backend="MariaDB", only=None):
    """sqlmap against `server`; `only` limits the targets to those names."""
    client = Client(server.url)
    out = os.path.join(OUT, "sqlmap", backend.lower())
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    token = register(client, "sqli_victim")
    victim_id = json.loads(client.request("GET", "/users/me", token=token)[2])["data"]["id"]
    level = "1" if ctx.quick else "2"
    gql = f"{server.url}/graphql"
    json_header = ["-H", "Content-Type: application/json"]
    auth = ["-H", f"Authorization: Bearer {token}"]
    targets = [
        ("REST login body", [f"{server.url}/users/login", "--data", json.dumps({"username": "sqli_victim*", "password": PASSWORD + "*"}), *json_header]),
        ("REST register body", [f"{server.url}/users/register", "--data", json.dumps({"username": "sqli_new*", "email": "sqli_new@example.com*", "password": PASSWORD + "*"}), *json_header]),
        ("GraphQL login variables", [gql, "--data", json.dumps({"query": "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { accessToken } }", "variables": {"u": "sqli_victim*", "p": PASSWORD + "*"}}), *json_header]),
        ("GraphQL user(username:) variable", [gql, "--data", json.dumps({"query": "query($n: String) { user(username: $n) { id username } }", "variables": {"n": "sqli_victim*"}}), *json_header, *auth]),
        ("GraphQL users(after:) cursor, inline in the document", [gql, "--data", json.dumps({"query": '{ users(first: 5, after: "eyJ4Ijoy*") { nodes { id } } }'}), *json_header, *auth]),
    ]
    if not ctx.quick:
        targets += [
            ("GraphQL register variables", [gql, "--data", json.dumps({"query": "mutation($i: RegisterInput!) { register(input: $i) { accessToken } }", "variables": {"i": {"username": "sqli_gql*", "email": "sqli_gql@example.com*", "password": PASSWORD}}}), *json_header]),
            ("REST GET /users/{id} path", [f"{server.url}/users/{victim_id}*", *auth]),
            ("REST GET /users?limit&after query", [f"{server.url}/users?limit=5*&after=abc*", *auth]),
        ]
    else:
        only = only or ("REST login body", "REST register body", "GraphQL user(username:) variable")
    if only:
        targets = [t for t in targets if t[0] in only]
    all_ok = True
    for i, (name, args) in enumerate(targets, 1):
        outdir = os.path.join(out, f"t{i}")
        cmd = [os.path.join(VENV_BIN, "sqlmap"), "-u", *args, "--batch", "--level", level, "--risk", "1",
               "--timeout", "10", "--retries", "1", "--time-sec", "2", "--ignore-code", "401,404",
               "--flush-session", "--disable-coloring", "--output-dir", outdir]
        c = section.command(f"({backend}) " + redact(shell_join(cmd), [token]).replace(ROOT + "/", ""))
        before = metrics_by_status(server.url)
        code, text = run_logged(cmd, os.path.join(out, f"t{i}.log"), [token], timeout=900, cwd=out)
        traffic = delta(metrics_by_status(server.url), before)
        log_files = [os.path.join(d, "log") for d, _, files in os.walk(outdir) if "log" in files]
        findings = sum(os.path.getsize(p) for p in log_files)
        vulnerable = re.findall(r"identified the following injection point|is vulnerable|sqlmap resumed the following injection point", text)
        clean = "do not appear to be injectable" in text or "does not seem to be injectable" in text
        section.figure(f"{backend}, {name}: requests sent, by status (server's /metrics)", f"{sum(traffic.values())} ({fmt_counts(traffic)})", c)
        # `clean` too: a run that stopped before testing (e.g. on a 404) proves nothing.
        ok = findings == 0 and not vulnerable and clean and traffic.get("5xx", 0) == 0 and code != -1
        all_ok &= section.check(f"sqlmap ({backend}) {name}: nothing injectable", ok,
                                f"injection log {findings} bytes; {'sqlmap: the tested parameters do not appear injectable' if clean else 'sqlmap did not finish testing: see log'}; 5xx: {traffic.get('5xx', 0)}")
    return all_ok
