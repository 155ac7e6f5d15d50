"""The soak: measure peak throughput of a read mix, then hold about half of it for N minutes
on MariaDB + Redis, and compare the server's RSS at the end with its RSS after warm-up.

Not run by itself: `reliability/run.py --suite soak --soak-minutes 10` runs it.
"""

import os
import subprocess
import threading
import time
import uuid

from common import HERE, ROOT, Client, Server, parse_wrk, redact, register, shell_join

SCRIPT = os.path.join(HERE, "wrk", "mix.lua")


def wrk(url, connections, seconds, token, delay_ms=0):
    cmd = ["wrk", "--latency", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "-s", SCRIPT, url]
    env = {**os.environ, "TOKEN": token, "DELAY_MS": str(delay_ms)}
    out = subprocess.run(cmd, check=True, text=True, capture_output=True, env=env).stdout
    shown = f"TOKEN=<token> DELAY_MS={delay_ms} " + shell_join(cmd).replace(ROOT + "/", "")
    return parse_wrk(out), shown, out


def soak(ctx, section):
    env = {"DATABASE_URL": ctx.mariadb.create_database("rel_soak"), "REDIS_URL": ctx.redis.url,
           "REDIS_KEY_PREFIX": f"rel-soak-{uuid.uuid4().hex[:8]}:"}
    server = Server(env, ctx.workdir, "soak")
    try:
        return run(ctx, section, server)
    finally:
        server.stop()


def run(ctx, section, server):
    client = Client(server.url)
    idle = server.rss_mib()
    token = register(client, "soaker")
    for i in range(60):  # something for the users page to list
        register(client, f"soakpeer{i}")
    section.figure("RSS idle at start / after 61 registrations", f"{idle:.1f} / {server.rss_mib():.1f} MiB")
    minutes = ctx.args.soak_minutes
    warmup = 60 if minutes >= 5 else 15
    section.note(f"API: `DATABASE_URL={ctx.mariadb.url}/rel_soak REDIS_URL={ctx.redis.url} target/release/user-api`; "
                 "the mix (reliability/wrk/mix.lua) is GraphQL `me`, REST `GET /users/me` and a GraphQL page of 20 users, in turn.")

    peak, cmd, _ = wrk(server.url, 32, 10, token)
    c = section.command(cmd)
    section.figure("peak throughput of the mix (c32, 10 s)", f"{peak['rps']:.0f} req/s (p50 {fmt_ms(peak['p50'])}, p99 {fmt_ms(peak['p99'])}, failed {peak['failed']})", c)
    target = peak["rps"] / 2

    # Pace with wrk's per-connection delay; pick connections so the delay is ~20 ms, then
    # correct the delay once from a short calibration run.
    conns = max(4, min(256, round(target * 0.021)))
    delay = max(1, round(conns * 1000 / target))
    cal, cmd, _ = wrk(server.url, conns, 5, token, delay)
    c_cal = section.command(cmd)
    per_request_ms = conns * 1000 / max(cal["rps"], 1) - delay  # latency and scheduling overhead
    delay = max(1, round(conns * 1000 / target - per_request_ms))
    section.figure("calibration", f"c{conns} delay {round(conns * 1000 / target)} ms → {cal['rps']:.0f} req/s; soak delay {delay} ms", c_cal)

    total = int(warmup + minutes * 60)
    rss = []
    stop = threading.Event()

    def sample():
        started = time.monotonic()
        while not stop.is_set():
            rss.append((time.monotonic() - started, server.rss_mib()))
            stop.wait(5)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    result, cmd, raw = wrk(server.url, conns, total, token, delay)
    stop.set()
    sampler.join()
    c_soak = section.command(cmd)
    with open(os.path.join(ctx.out, "soak-wrk.txt"), "w") as f:
        f.write(redact(raw, [token]))
    with open(os.path.join(ctx.out, "soak-rss.csv"), "w") as f:
        f.write("seconds,rss_mib\n" + "".join(f"{t:.0f},{m:.2f}\n" for t, m in rss))

    after_warmup = next((m for t, m in rss if t >= warmup), None)
    end = rss[-1][1] if rss else None
    peak_rss = max((m for _, m in rss), default=0)
    section.figure("soak duration", f"{warmup} s warm-up + {minutes:g} min, one wrk run", c_soak)
    section.figure("achieved rate (whole run)", f"{result['rps']:.0f} req/s = {result['rps'] / max(peak['rps'], 1):.0%} of peak", c_soak)
    section.figure("requests", f"{result['requests']}", c_soak)
    section.figure("latency", f"p50 {fmt_ms(result['p50'])}, p99 {fmt_ms(result['p99'])}", c_soak)
    section.figure("failed answers (not 200, or GraphQL errors)", f"{result['failed']}" + (f" ({result['failed_statuses']})" if result["failed"] else ""), c_soak)
    section.figure("socket errors", result["socket_errors"], c_soak)
    section.figure("RSS after warm-up / at the end / highest", f"{after_warmup:.1f} / {end:.1f} / {peak_rss:.1f} MiB" if after_warmup and end else "–", c_soak)
    section.note("RSS every 5 s is in reliability/out/soak-rss.csv (not committed).")

    ok = section.check("soak: no errors", result["requests"] > 0 and result["failed"] == 0 and result["socket_errors"] == "none",
                       f"{result['failed']} failed, socket errors: {result['socket_errors']}")
    # Whether the run tested what it claims. The pacing is open-loop per connection, so when
    # other work takes the cores the rate falls short; far off half, the soak is not valid.
    ok &= section.check("soak ran at about half of peak (30–70%)", 0.3 <= result["rps"] / max(peak["rps"], 1) <= 0.7,
                        f"{result['rps'] / max(peak['rps'], 1):.0%}")
    growth = (end - after_warmup) / after_warmup if after_warmup and end else None
    ok &= section.check("soak: RSS at the end within 10% of RSS after warm-up", growth is not None and abs(growth) <= 0.10,
                        f"{growth:+.1%}" if growth is not None else "no samples")
    ok &= section.check("soak: server still up", server.alive())
    return ok


def fmt_ms(v):
    return "–" if v is None else f"{v:.2f} ms"
