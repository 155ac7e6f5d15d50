#!/usr/bin/env python3
"""End-to-end mail check of user-api against MailDev (an SMTP server with a REST API).

    .ci/mail-e2e/run.py [path/to/user-api]      # default: target/debug/user-api

Starts MailDev (npm package, installed here by `npm ci`) and the server on the embedded SQLite
default, both on spare loopback ports, with SMTP_URL pointing at MailDev. Then, as a user
would: register, receive the verification mail over SMTP (read back through MailDev's API),
follow its link to verify; ask for a password reset, open the link's page, set a new
password through its form, sign in with it; receive the change notice. Stops what it started.
Exit status 0 when every step passed.
"""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PASSWORD = "correct horse battery"
NEW_PASSWORD = "a brand new passphrase"
TOKEN = r"token=([A-Za-z0-9_-]{43})"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(what, check, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            result = check()
            if result:
                return result
        except (OSError, urllib.error.URLError, ValueError):
            pass
        time.sleep(0.2)
    raise SystemExit(f"FAIL: {what} (waited {timeout} s)")


def http(method, url, body=None, form=None, headers=None):
    data = None
    headers = dict(headers or {})
    if body is not None:
        data = json.dumps(body).encode()
        headers["content-type"] = "application/json"
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        headers["content-type"] = "application/x-www-form-urlencoded"
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def main():
    binary = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target/debug/user-api"))
    if not os.path.exists(binary):
        raise SystemExit(f"FAIL: no server binary at {binary} (build it first)")
    if not os.path.isdir(os.path.join(HERE, "node_modules", "maildev")):
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--silent"], cwd=HERE, check=True)
    smtp, web, api = free_port(), free_port(), free_port()
    work = tempfile.mkdtemp(prefix="user-api-mail-e2e-")
    maildev = subprocess.Popen(
        [os.path.join(HERE, "node_modules", ".bin", "maildev"), "--ip", "127.0.0.1", "--smtp", str(smtp), "--web", str(web)],
        stdout=open(os.path.join(work, "maildev.log"), "w"), stderr=subprocess.STDOUT,
    )
    env = dict(os.environ)
    for key in list(env):
        if key.startswith(("DATABASE_", "REDIS_", "JWT_", "SMTP_", "MAIL_", "EMAIL_", "RATE_LIMIT_")):
            del env[key]
    env.update({
        "DATABASE_URL": f"sqlite://{work}/users.db",
        "BIND": f"127.0.0.1:{api}",
        "SMTP_URL": f"smtp://127.0.0.1:{smtp}",
        "MAIL_FROM": "user-api e2e <no-reply@example.com>",
        "APP_NAME": "user-api e2e",
        "RUST_LOG": "info",
    })
    server = subprocess.Popen([binary], env=env, cwd=work,
                              stdout=open(os.path.join(work, "server.log"), "w"), stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{api}"
    mail_api = f"http://127.0.0.1:{web}"
    ok = False
    try:
        wait_until("MailDev answers", lambda: http("GET", f"{mail_api}/email")[0] == 200)
        wait_until("the server is ready", lambda: http("GET", f"{base}/readyz")[0] == 200)

        def gql(query, variables=None, token=None):
            headers = {"authorization": f"Bearer {token}"} if token else {}
            status, text = http("POST", f"{base}/graphql", body={"query": query, "variables": variables or {}}, headers=headers)
            reply = json.loads(text)
            if status != 200 or reply.get("errors"):
                raise SystemExit(f"FAIL: {query[:40]}… answered {status} {text}")
            return reply["data"]

        def mails_to(address):
            status, text = http("GET", f"{mail_api}/email")
            return [m for m in json.loads(text) if any(t.get("address") == address for t in m.get("to", []))]

        def mail_with(address, needle, count=1):
            return wait_until(f"mail to {address} containing {needle!r}",
                              lambda: [m for m in mails_to(address) if needle in (m.get("text") or "")][count - 1:] or None)[0]

        address = "e2e@example.com"
        signed = gql("mutation($i: RegisterInput!) { register(input: $i) { accessToken user { id } } }",
                     {"i": {"username": "e2e_user", "email": address, "password": PASSWORD}})["register"]
        print("ok: registered")
        mail = mail_with(address, "/verify-email?token=")
        token = re.search(TOKEN, mail["text"]).group(1)
        assert mail.get("html"), "the verification mail has an HTML body"
        print(f"ok: verification mail received over SMTP: {mail['subject']!r}")
        me = gql("mutation($t: String!) { verifyEmail(token: $t) { emailVerified } }", {"t": token})
        assert me["verifyEmail"]["emailVerified"] is True, me
        print("ok: address verified through the link's token")

        assert gql("mutation($e: String!) { requestPasswordReset(email: $e) }", {"e": address})["requestPasswordReset"] is True
        mail = mail_with(address, "/reset-password?token=")
        link = re.search(r"(https?://\S+/reset-password\?" + TOKEN + ")", mail["text"])
        url, token = link.group(1), link.group(2)
        print(f"ok: reset mail received: {mail['subject']!r}")
        status, page = http("GET", url)
        assert status == 200 and "<form" in page and "<script" not in page, (status, page)
        status, page = http("POST", f"{base}/reset-password", form={"token": token, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
        assert status == 200, (status, page)
        print("ok: new password set through the reset page")
        login = "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { accessToken } }"
        gql(login, {"u": "e2e_user", "p": NEW_PASSWORD})
        status, text = http("POST", f"{base}/graphql", body={"query": login, "variables": {"u": "e2e_user", "p": PASSWORD}})
        assert "UNAUTHENTICATED" in text, text
        print("ok: signed in with the new password; the old one is refused")
        notice = wait_until("the password-change notice", lambda: [m for m in mails_to(address) if "token=" not in (m.get("text") or "")] or None)[0]
        print(f"ok: notice received without a token: {notice['subject']!r}")
        del signed
        ok = True
    finally:
        for process in (server, maildev):
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        if ok:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"logs kept in {work}", file=sys.stderr)
    print("mail e2e: every step passed")


if __name__ == "__main__":
    main()
