"""Abuse suite: what an outside probe found, tried again against the release build.

- Fragment bombs: documents whose fragments each spread the next one twice (2^levels fields
  once expanded, in about a kilobyte), by POST and GET without a token, alone and several at
  once while /healthz is watched.
- Races: a login with the old password sent while the password changes, and a refresh sent
  while logoutAll runs, many overlapping trials each; no session may survive.

Not run by itself: `reliability/run.py --suite abuse` runs it, on the run's own MariaDB and
Redis, and on the embedded SQLite backend.
"""

import statistics
import threading
import time
import urllib.parse

from common import Client, Server, error_code

BOMB_LEVELS = (25, 30, 40)
RACE_TRIALS = 60
RACE_TRIALS_QUICK = 30

LOGIN = ("mutation($u: String!, $p: String!) { login(username: $u, password: $p) "
         "{ accessToken refreshToken } }")
REGISTER = ("mutation($i: RegisterInput!) { register(input: $i) { accessToken refreshToken } }")
REFRESH = "mutation($t: String!) { refresh(refreshToken: $t) { accessToken refreshToken } }"
CHANGE = "mutation($i: UpdateMeInput!) { updateMe(input: $i) { id } }"


def bomb(levels):
    doc = "{ me { ...F0 } }"
    for i in range(levels):
        doc += f" fragment F{i} on User {{ ...F{i + 1} ...F{i + 1} }}"
    return doc + f" fragment F{levels} on User {{ id }}"


def fragment_bombs(section, server, label):
    client = Client(server.url, timeout=120)
    for levels in BOMB_LEVELS:
        doc = bomb(levels)
        for method in ("POST", "GET"):
            started = time.monotonic()
            if method == "POST":
                status, _, text = client.request("POST", "/graphql", {"query": doc})
            else:
                status, _, text = client.request("GET", "/graphql?" + urllib.parse.urlencode({"query": doc}))
            took = (time.monotonic() - started) * 1000
            refused = '"GRAPHQL_VALIDATION_FAILED"' in text
            section.figure(f"{label}: {levels}-level bomb ({len(doc)} bytes) by {method}",
                           f"{'refused' if refused else 'ANSWERED'} in {took:.1f} ms")
            section.check(f"{label}: the {levels}-level bomb by {method} is refused within 1 s",
                          refused and took < 1000, f"HTTP {status}, {took:.1f} ms")
    client.close()

    # Eight clients sending 40-level bombs back to back for 5 s while /healthz is timed.
    stop = threading.Event()
    sent = [0]

    def flood():
        c = Client(server.url, timeout=120)
        doc = bomb(40)
        while not stop.is_set():
            c.request("POST", "/graphql", {"query": doc})
            sent[0] += 1
        c.close()

    workers = [threading.Thread(target=flood, daemon=True) for _ in range(8)]
    for w in workers:
        w.start()
    probe = Client(server.url, timeout=30)
    latencies = []
    until = time.monotonic() + 5
    while time.monotonic() < until:
        started = time.monotonic()
        probe.request("GET", "/healthz")
        latencies.append((time.monotonic() - started) * 1000)
        time.sleep(0.02)
    stop.set()
    for w in workers:
        w.join()
    probe.close()
    worst = max(latencies)
    p99 = statistics.quantiles(latencies, n=100)[98]
    section.figure(f"{label}: 40-level bombs answered in 5 s by 8 clients", f"{sent[0]}")
    section.figure(f"{label}: /healthz during the bombs, p99 / worst", f"{p99:.1f} ms / {worst:.1f} ms")
    section.check(f"{label}: /healthz stays responsive under a bomb flood (worst < 500 ms)", worst < 500,
                  f"worst {worst:.1f} ms")
    section.check(f"{label}: the server survived the bombs", server.alive())


def _gql(client, query, variables, token=None):
    status, body = client.gql(query, variables, token)
    return body


def _survives(client, sign_in):
    access, refresh = sign_in
    body = _gql(client, "{ me { id } }", {}, access)
    if (body.get("data") or {}).get("me"):
        return True
    body = _gql(client, REFRESH, {"t": refresh})
    return bool((body.get("data") or {}).get("refresh"))


def _sign_in(body, field):
    data = (body.get("data") or {}).get(field)
    return (data["accessToken"], data["refreshToken"]) if data else None


def races(section, server, label, trials):
    main = Client(server.url, timeout=30)
    user = f"racer{int(time.time() * 1000) % 10**9}"
    password = lambda i: f"racing horse number {i}"  # noqa: E731
    body = _gql(main, REGISTER, {"i": {"username": user, "email": f"{user}@example.com", "password": password(0)}})
    changer = _sign_in(body, "register")

    # Login racing a password change.
    survivors = 0
    raced_ok = 0
    for i in range(trials):
        result = {}

        def change():
            c = Client(server.url, timeout=30)
            result["change"] = _gql(c, CHANGE, {"i": {"password": password(i + 1), "currentPassword": password(i)}},
                                    changer[0])
            c.close()

        def racer():
            time.sleep(0.040 * i / trials)
            c = Client(server.url, timeout=30)
            result["login"] = _gql(c, LOGIN, {"u": user, "p": password(i)})
            c.close()

        threads = [threading.Thread(target=change), threading.Thread(target=racer)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        raced = _sign_in(result["login"], "login")
        if raced:
            raced_ok += 1
            survivors += _survives(main, raced)
        changer = _sign_in(_gql(main, LOGIN, {"u": user, "p": password(i + 1)}), "login")
    section.figure(f"{label}: login racing a password change, {trials} trials",
                   f"{raced_ok} logins succeeded, {survivors} of them survived the change")
    section.check(f"{label}: no login racing a password change survives it", survivors == 0)

    # Refresh racing logoutAll.
    survivors = 0
    refreshed_ok = 0
    final = password(trials)
    for i in range(trials):
        ender = _sign_in(_gql(main, LOGIN, {"u": user, "p": final}), "login")
        victim = _sign_in(_gql(main, LOGIN, {"u": user, "p": final}), "login")
        result = {}

        # From the refresh 10 ms ahead to 10 ms behind, so the two cross at every point.
        offset = 0.020 * i / trials - 0.010

        def end():
            time.sleep(max(0.0, -offset))
            c = Client(server.url, timeout=30)
            result["end"] = _gql(c, "mutation { logoutAll }", {}, ender[0])
            c.close()

        def refresh():
            time.sleep(max(0.0, offset))
            c = Client(server.url, timeout=30)
            result["refresh"] = _gql(c, REFRESH, {"t": victim[1]})
            c.close()

        threads = [threading.Thread(target=end), threading.Thread(target=refresh)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        refreshed = _sign_in(result["refresh"], "refresh")
        if refreshed:
            refreshed_ok += 1
            survivors += _survives(main, refreshed)
        survivors += _survives(main, victim)
    section.figure(f"{label}: refresh racing logoutAll, {trials} trials",
                   f"{refreshed_ok} refreshes succeeded, {survivors} sessions survived")
    section.check(f"{label}: no refresh racing logoutAll survives it", survivors == 0)
    code = error_code(_gql(main, "{ me { id } }", {}, changer[0]))
    section.check(f"{label}: the last password change's own sign-in was ended by logoutAll", code == "UNAUTHENTICATED")
    main.close()


def abuse(ctx, section, server, label):
    fragment_bombs(section, server, label)
    races(section, server, label, RACE_TRIALS_QUICK if ctx.quick else RACE_TRIALS)


def run(ctx, section):
    server = ctx.api("abuse")
    try:
        abuse(ctx, section, server, "MariaDB + Redis")
        section.check("the API process survived (MariaDB + Redis)", server.alive())
    finally:
        server.stop()
    server = Server({"DATABASE_URL": "sqlite://abuse/users.db"}, ctx.workdir, "abuse-sqlite")
    try:
        abuse(ctx, section, server, "SQLite")
        section.check("the API process survived (SQLite)", server.alive())
    finally:
        server.stop()
