"""Shared pieces of the reliability suites: private MariaDB and Redis instances on spare
loopback ports, the user-api release server, a small HTTP client, wrk's output parser, and the
results recorder.

Not run by itself; reliability/run.py imports it, and so does bench/run.py (the server launcher,
the RSS reader and the wrk parser).
"""

import datetime
import http.client
import json
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HERE = os.path.join(ROOT, "reliability")
OUT = os.path.join(HERE, "out")
BIN = os.path.join(ROOT, "target", "release", "user-api")
SECRET = "321a9d1e9a23912c30cffc97e564dcad6f7e5f85150b4bac6eb2c1a2bac6d995"  # random (openssl rand -hex 32): the server refuses guessable keys
PASSWORD = "reliability pass 1"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port, timeout=0.2):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def shell_join(cmd):
    return " ".join(shlex.quote(str(c)) for c in cmd)


def redact(text, secrets):
    for s in secrets:
        if s:
            text = text.replace(s, "<token>")
    return text


# --- HTTP ----------------------------------------------------------------------------------


class Client:
    """A keep-alive HTTP/1.1 client for one host (one per thread)."""

    def __init__(self, base, timeout=10):
        host_port = base.split("://", 1)[1].rstrip("/")
        self.host, port = host_port.split(":")
        self.port = int(port)
        self.timeout = timeout
        self.conn = None

    def request(self, method, path, body=None, token=None, headers=None):
        """Returns (status, headers dict, text); raises OSError on transport failure."""
        hdrs = {"accept": "application/json"}
        if body is not None:
            hdrs["content-type"] = "application/json"
            if not isinstance(body, (bytes, str)):
                body = json.dumps(body)
        if token:
            hdrs["authorization"] = f"Bearer {token}"
        hdrs.update(headers or {})
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                self.conn.request(method, path, body=body, headers=hdrs)
                resp = self.conn.getresponse()
                text = resp.read().decode("utf-8", "replace")
                return resp.status, {k.lower(): v for k, v in resp.getheaders()}, text
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as e:
                # A keep-alive connection the server closed: retry once on a new one.
                self.close()
                if attempt:
                    raise OSError(str(e)) from e
            except (OSError, http.client.HTTPException) as e:
                self.close()
                raise OSError(str(e)) from e
        raise OSError("unreachable")

    def gql(self, query, variables=None, token=None):
        status, _, text = self.request("POST", "/graphql", {"query": query, "variables": variables or {}}, token)
        try:
            return status, json.loads(text)
        except ValueError:
            return status, {"raw": text}

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


REGISTER = "mutation($i: RegisterInput!) { register(input: $i) { accessToken user { id } } }"
LOGIN = "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { accessToken } }"


def register(client, username, password=PASSWORD):
    """Registers through GraphQL and returns the token (raises on failure)."""
    status, body = client.gql(REGISTER, {"i": {"username": username, "email": f"{username}@example.com", "password": password}})
    data = (body.get("data") or {}).get("register")
    if status != 200 or not data:
        raise RuntimeError(f"register {username}: {status} {body}")
    return data["accessToken"]


def login(client, username, password=PASSWORD):
    status, body = client.gql(LOGIN, {"u": username, "p": password})
    data = (body.get("data") or {}).get("login")
    if status != 200 or not data:
        raise RuntimeError(f"login {username}: {status} {body}")
    return data["accessToken"]


def error_code(body):
    errors = body.get("errors") or []
    return (errors[0].get("extensions") or {}).get("code") if errors else None


# --- processes -----------------------------------------------------------------------------


def rss_kib(pid, field="VmRSS"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def wait_until(check, timeout, what, interval=0.01):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    raise RuntimeError(f"{what} did not happen within {timeout} s")


class MariaDB:
    """A private MariaDB on a spare loopback port, in a datadir of its own. Stop and start
    it as often as needed; the datadir and port stay the same."""

    def __init__(self, workdir):
        self.datadir = os.path.join(workdir, "mariadb")
        os.makedirs(self.datadir)
        self.port = free_port()
        self.proc = None
        self.log_path = os.path.join(workdir, "mariadb.log")
        install = shutil.which("mariadb-install-db") or shutil.which("mysql_install_db")
        if not install:
            raise RuntimeError("mariadb-install-db not found (apt-get install mariadb-server)")
        if os.geteuid() == 0:
            shutil.chown(workdir, "mysql")
            shutil.chown(self.datadir, "mysql")
        cmd = [install, "--no-defaults", f"--datadir={self.datadir}", "--auth-root-authentication-method=normal", "--skip-test-db"]
        if os.geteuid() == 0:
            cmd.insert(2, "--user=mysql")
        subprocess.run(cmd, check=True, capture_output=True, text=True)
        self.url = f"mysql://root@127.0.0.1:{self.port}"
        self.start()

    def start(self):
        cmd = [
            "/usr/sbin/mariadbd", "--no-defaults", f"--datadir={self.datadir}",
            f"--socket={self.datadir}/s.sock", f"--port={self.port}", "--bind-address=127.0.0.1",
            "--skip-name-resolve", "--max-connections=500", "--innodb-buffer-pool-size=128M",
            f"--log-error={self.log_path}",
        ]
        if os.geteuid() == 0:
            cmd.append("--user=mysql")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self.answers, 60, f"MariaDB on port {self.port} answering", 0.02)

    def answers(self):
        if self.proc.poll() is not None:
            raise RuntimeError(f"mariadbd exited ({self.proc.returncode}); see {self.log_path}")
        r = subprocess.run(self.cli() + ["-e", "SELECT 1"], capture_output=True)
        return r.returncode == 0

    def cli(self, database=None):
        return ["mysql", "--no-defaults", "-h", "127.0.0.1", "-P", str(self.port), "-u", "root", "-N", "-B"] + ([database] if database else [])

    def sql(self, statement, database=None):
        return subprocess.run(self.cli(database) + ["-e", statement], check=True, capture_output=True, text=True).stdout

    def create_database(self, name):
        self.sql(f"DROP DATABASE IF EXISTS {name}; CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        return f"{self.url}/{name}"

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        wait_until(lambda: not port_open(self.port), 10, "MariaDB port closing")


class Redis:
    """A private Redis on a spare loopback port. `snapshot()` writes its RDB, which a restart
    loads, so sessions survive a crash as they would with persistence configured."""

    def __init__(self, workdir):
        self.dir = os.path.join(workdir, "redis")
        os.makedirs(self.dir)
        self.port = free_port()
        self.proc = None
        self.url = f"redis://127.0.0.1:{self.port}"
        self.start()

    def start(self):
        cmd = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
               "--daemonize", "no", "--dir", self.dir, "--dbfilename", "dump.rdb", "--loglevel", "warning"]
        self.proc = subprocess.Popen(cmd, stdout=open(os.path.join(self.dir, "redis.log"), "a"), stderr=subprocess.STDOUT)
        wait_until(self.answers, 30, f"Redis on port {self.port} answering", 0.005)

    def cli(self, *args):
        return subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(self.port), *args], capture_output=True, text=True)

    def answers(self):
        if self.proc.poll() is not None:
            raise RuntimeError(f"redis-server exited ({self.proc.returncode})")
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def snapshot(self):
        r = self.cli("SAVE")
        if r.stdout.strip() != "OK":
            raise RuntimeError(f"redis SAVE: {r.stdout} {r.stderr}")

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Server:
    """target/release/user-api (or `binary`) on a spare port with `env`, ready (GET /readyz = 200)."""

    def __init__(self, env, workdir, name="api", port=None, binary=None):
        self.binary = binary or BIN
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = os.path.join(workdir, f"{name}-{self.port}.log")
        self.env = {
            "PATH": os.environ.get("PATH", ""),
            "BIND": f"127.0.0.1:{self.port}",
            "JWT_SECRET": SECRET,
            "ACCESS_TOKEN_TTL": "7200",
            "RUST_LOG": "warn",
            # These suites fuzz, inject and load the API from one address: the rate limits
            # (tested on their own in tests/api/security_rate_limits.rs) would answer 429.
            "RATE_LIMIT_LOGIN_PER_USERNAME": "off",
            "RATE_LIMIT_LOGIN_FAILURES_PER_USERNAME": "off",
            "RATE_LIMIT_EMAIL_CHANGE_PER_USER": "off",
            "RATE_LIMIT_LOGIN_PER_IP": "off",
            "RATE_LIMIT_REGISTER_PER_IP": "off",
            "RATE_LIMIT_REFRESH_PER_SESSION": "off",
            "RATE_LIMIT_PASSWORD_RESET_PER_IP": "off",
            "RATE_LIMIT_PASSWORD_RESET_PER_EMAIL": "off",
            "RATE_LIMIT_VERIFICATION_PER_USER": "off",
            "RATE_LIMIT_PERSISTED_QUERIES_PER_IP": "off",
            **env,
        }
        self.workdir = workdir
        self.start()

    def start(self):
        log = open(self.log_path, "a")
        started = time.monotonic()
        self.proc = subprocess.Popen([self.binary], env=self.env, cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT)
        client = Client(self.url, timeout=2)

        def ready():
            if self.proc.poll() is not None:
                raise RuntimeError(f"user-api exited ({self.proc.returncode}); see {self.log_path}")
            try:
                return client.request("GET", "/readyz")[0] == 200
            except OSError:
                return False

        wait_until(ready, 60, f"user-api on port {self.port} ready", 0.002)
        client.close()
        # From exec to the first 200 on /readyz, migrations included.
        self.ready_ms = (time.monotonic() - started) * 1000

    @property
    def pid(self):
        return self.proc.pid

    def rss_mib(self, field="VmRSS"):
        return rss_kib(self.proc.pid, field) / 1024

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log_lines(self, needle):
        with open(self.log_path, errors="replace") as f:
            return [line for line in f if needle in line]


# --- wrk -----------------------------------------------------------------------------------


def parse_wrk(out):
    """wrk's summary (with the --latency distribution and the lua scripts' "Failed answers"
    line) as numbers; latencies in ms."""
    def latency(pct):
        m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not m:
            return None
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    def number(pattern, default=0.0):
        m = re.search(pattern, out)
        return float(m.group(1)) if m else default

    socket = re.search(r"Socket errors: (.*)", out)
    return {
        "rps": number(r"Requests/sec:\s+([\d.]+)"),
        "requests": int(number(r"(\d+) requests in")),
        "failed": int(number(r"Failed answers: (\d+)")),
        "failed_statuses": (re.search(r"Failed statuses: (.*)", out) or [None, ""])[1].strip(),
        "non2xx": int(number(r"Non-2xx or 3xx responses: (\d+)")),
        "socket_errors": socket.group(1).strip() if socket else "none",
        "p50": latency(50),
        "p99": latency(99),
    }


# --- results -------------------------------------------------------------------------------


class Section:
    """One suite's part of RESULTS.md: the commands that ran, its figures, and its checks."""

    def __init__(self, title, intro=""):
        self.title = title
        self.intro = intro
        self.commands = []
        self.rows = []  # (what, value, command index or None)
        self.checks = []  # (what, passed, detail)
        self.notes = []
        self.skipped = None

    def command(self, cmd):
        """Records a command line (str or argv) and returns its number, for figures to cite."""
        text = cmd if isinstance(cmd, str) else shell_join(cmd)
        self.commands.append(text)
        return len(self.commands)

    def figure(self, what, value, cmd=None):
        self.rows.append((what, value, cmd))
        print(f"    {what}: {value}", flush=True)

    def check(self, what, passed, detail=""):
        self.checks.append((what, bool(passed), detail))
        print(f"  [{'PASS' if passed else 'FAIL'}] {what}{' — ' + detail if detail else ''}", flush=True)
        return bool(passed)

    def note(self, text):
        self.notes.append(text)

    @property
    def passed(self):
        return all(ok for _, ok, _ in self.checks)

    def markdown(self):
        out = [f"## {self.title}", ""]
        if self.skipped:
            return out + [f"Not run: {self.skipped}", ""]
        if self.intro:
            out += [self.intro, ""]
        if self.commands:
            out += ["Commands (run by `reliability/run.py`; tokens shown as `<token>`, ports chosen at run time):", ""]
            out += [f"{i}. {code(c)}" for i, c in enumerate(self.commands, 1)] + [""]
        if self.rows:
            out += ["| figure | value | command |", "|---|---|---|"]
            out += [f"| {w} | {v} | {c if c else '–'} |" for w, v, c in self.rows] + [""]
        if self.checks:
            out += ["| check | result | detail |", "|---|---|---|"]
            out += [f"| {w} | {'**pass**' if ok else '**FAIL**'} | {d} |" for w, ok, d in self.checks] + [""]
        out += [f"- {n}" for n in self.notes] + ([""] if self.notes else [])
        return out


def code(text):
    """Inline Markdown code, with double backticks when the text holds a backtick."""
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def machine():
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "")
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB, {platform.system()} {platform.release()}"


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def versions():
    def first_line(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True).stdout.strip().splitlines()[0]
        except (OSError, IndexError):
            return "?"

    def version(cmd):
        m = re.search(r"v?=?(\d+\.\d+[.\d]*[-\w.]*)", first_line(cmd))
        return m.group(1) if m else "?"

    return {
        "MariaDB": version(["/usr/sbin/mariadbd", "--version"]),
        "Redis": version(["redis-server", "--version"]),
        "wrk": version(["wrk", "--version"]),
        "node": version(["node", "--version"]),
    }


def write_results(path, sections, argv, started, rev, tools, load_at_start):
    finished = datetime.datetime.now(datetime.timezone.utc)
    lines = [
        "# Reliability results",
        "",
        f"Written by `{shell_join(['reliability/run.py'] + argv)}` — every figure below comes from that run.  ",
        f"Started {started:%Y-%m-%d %H:%M} UTC, took {(finished - started).total_seconds() / 60:.1f} min; commit {rev}.  ",
        f"Machine: {machine()}. The server, its MariaDB and Redis, and the load generators share these cores, "
        f"and the machine is shared with other engineers' builds (load average at the start: {load_at_start}; "
        f"at the end: {loadavg()}), so throughput figures are noisy.  ",
        "Tools: " + ", ".join(f"{k} {v}" for k, v in tools.items()) + ".",
        "",
        "| suite | result |",
        "|---|---|",
    ]
    for s in sections:
        verdict = "not run" if s.skipped else ("pass" if s.passed else "**FAIL**")
        lines.append(f"| {s.title} | {verdict} |")
    lines.append("")
    for s in sections:
        lines += s.markdown()
    with open(path, "w") as f:
        f.write("\n".join(lines))


def tmpdir(prefix):
    os.makedirs(OUT, exist_ok=True)
    return tempfile.mkdtemp(prefix=prefix, dir="/tmp")
