// GraphiQL in a real browser, with no network but loopback.
//
//     node .ci/browser/graphiql.mjs [path/to/user-api]     # default: target/debug/user-api
//
// Starts the server on the embedded SQLite default on a spare loopback port, registers a user,
// then drives Debian's chromium (/usr/bin/chromium, through playwright-core) as a person would,
// in two scenarios, each in a fresh tab: opens /graphiql, finds the Authorization template in
// the header editor and puts the token in it, then
//
//   1. types `{ me { id username } }`, runs it, and reads the user back from the result panel;
//   2. types `subscription { accountEvents { kind sessionId } }` and runs it (GraphiQL opens
//      the WebSocket at /graphql and signs it in with the header editor's headers), signs the
//      same user in again from here over plain HTTP, and reads the SESSION_STARTED event of
//      that new session (its id is the new token's `jti`) from the result panel.
//
// Every host but the server's resolves to nothing and any request to one is aborted and
// reported; a WebSocket to one (which request routing does not see) is reported. Any console
// error or uncaught exception fails the check too.
// Screenshots go to .ci/artifacts/ (git-ignored). Exit status 0 when every step passed.

import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "..", "..");
const artifacts = join(root, ".ci", "artifacts");
const binary = resolve(process.argv[2] ?? join(root, "target", "debug", "user-api"));
const browserPath = process.env.CHROMIUM ?? "/usr/bin/chromium";

function freePort() {
  return new Promise((ok, fail) => {
    const server = createServer();
    server.once("error", fail);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => ok(port));
    });
  });
}

async function waitUntil(what, check, seconds = 60) {
  const deadline = Date.now() + seconds * 1000;
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${what} (waited ${seconds} s)`);
}

async function gql(base, query, variables, token) {
  const headers = { "content-type": "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await fetch(`${base}/graphql`, {
    method: "POST",
    headers,
    body: JSON.stringify({ query, variables }),
  });
  const body = await response.json();
  if (body.errors) throw new Error(`${query}: ${JSON.stringify(body.errors)}`);
  return body.data;
}

/** The text of the CodeMirror editor inside `selector` (the editors GraphiQL 3 uses). */
function editorText(page, selector) {
  return page.$eval(`${selector} .CodeMirror`, (el) => el.CodeMirror.getValue());
}

/** Replaces the text of the CodeMirror `editor` (a locator) as a person would: click into it,
 * select all, type. */
async function typeInto(page, editor, text) {
  await editor.locator(".CodeMirror-lines").click();
  await page.keyboard.press("Control+A");
  await page.keyboard.press("Delete");
  // One input event, as a paste: typing key by key would meet the editor's bracket closing.
  await page.keyboard.insertText(text);
}

/** The claims of a JWT, unverified: only to learn which session a token is. */
function claims(token) {
  return JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString("utf8"));
}

/** Opens /graphiql in a new tab of `context` and puts `token` in the header editor. Returns the
 * page and the WebSockets it opens (url and frames, for the subscription and for diagnosis). */
async function openGraphiQL({ context, base, port, problems }, token, screenshot) {
  const page = await context.newPage();
  const sockets = [];
  page.on("console", (message) => {
    if (message.type() === "error") problems.push(`console error: ${message.text()}`);
  });
  page.on("pageerror", (error) => problems.push(`uncaught: ${error.message}`));
  page.on("requestfailed", (request) => {
    problems.push(`failed request: ${request.url()} (${request.failure()?.errorText})`);
  });
  // context.route never sees a WebSocket, so they are watched here instead: one to another
  // host is reported (and cannot reach a named one, by the host resolver rules). The page's own
  // WebSocket is left as the browser makes it: routeWebSocket would swap in a script stand-in.
  page.on("websocket", (socket) => {
    const url = new URL(socket.url());
    if (url.host !== `127.0.0.1:${port}`) problems.push(`WebSocket to another host: ${url.href}`);
    const seen = { url: url.href, frames: [], closed: false };
    sockets.push(seen);
    socket.on("framesent", ({ payload }) => seen.frames.push(`> ${payload}`));
    socket.on("framereceived", ({ payload }) => seen.frames.push(`< ${payload}`));
    socket.on("socketerror", (error) => problems.push(`WebSocket error: ${url.href}: ${error}`));
    socket.on("close", () => (seen.closed = true));
  });

  await page.goto(`${base}/graphiql`);
  await page.waitForSelector(".graphiql-query-editor .CodeMirror", { timeout: 30000 });
  const headers = await page.$$eval(".graphiql-editor-tool .CodeMirror", (editors) =>
    editors.map((el) => el.CodeMirror.getValue()),
  );
  if (!headers.some((text) => text.includes('"Authorization": "Bearer "'))) {
    throw new Error(`no Authorization template in the header editor: ${JSON.stringify(headers)}`);
  }
  if (screenshot) await page.screenshot({ path: join(artifacts, screenshot) });
  // The header editor is the one with the template in it.
  const headerIndex = headers.findIndex((text) => text.includes("Authorization"));
  const headerEditor = page.locator(".graphiql-editor-tool .CodeMirror").nth(headerIndex);
  await typeInto(page, headerEditor, JSON.stringify({ Authorization: `Bearer ${token}` }, null, 2));
  return { page, sockets };
}

/** Types `query` into the query editor and runs it. */
async function run(page, query) {
  await typeInto(page, page.locator(".graphiql-query-editor .CodeMirror"), query);
  // GraphiQL parses the editor's text a moment after it changes, and its fetcher picks HTTP
  // or the WebSocket by the operation it parsed last: run before that, and a subscription
  // goes out over HTTP as the query that was there before it.
  await page.waitForFunction(
    (text) =>
      document.querySelector(".graphiql-query-editor .CodeMirror")?.CodeMirror.documentAST?.loc
        ?.source.body === text,
    query,
    { timeout: 10000 },
  );
  await page.click(".graphiql-execute-button");
}

/** Scenario 1: a query over HTTP, signed in by the header editor. */
async function meScenario(setup, { token, userId, username }) {
  const { page } = await openGraphiQL(setup, token, "graphiql-start.png");
  await run(page, "{ me { id username } }");
  await waitUntil(
    "the result panel shows the user",
    async () => (await editorText(page, ".graphiql-response")).includes(username),
    30,
  );
  const result = JSON.parse(await editorText(page, ".graphiql-response"));
  await page.screenshot({ path: join(artifacts, "graphiql-me.png") });
  if (result.data?.me?.id !== userId || result.data?.me?.username !== username) {
    throw new Error(`unexpected result: ${JSON.stringify(result)}`);
  }
  if (setup.problems.length) throw new Error(setup.problems.join("\n"));
  await page.close();
  return `{ me } answered ${JSON.stringify(result.data.me)}`;
}

/** Scenario 2: a subscription over GraphiQL's WebSocket, fed by a sign-in made elsewhere. */
async function subscriptionScenario(setup, { token, username, password }) {
  const { base, port } = setup;
  const { page, sockets } = await openGraphiQL(setup, token);
  await run(page, "subscription { accountEvents { kind sessionId } }");
  const socketUrl = `ws://127.0.0.1:${port}/graphql`;
  const frames = () => sockets.filter((s) => s.url === socketUrl).flatMap((s) => s.frames);
  const trace = () =>
    sockets
      .map((s) => `${s.url}${s.closed ? " (closed)" : ""}\n  ${s.frames.join("\n  ")}`)
      .join("\n");
  // graphql-transport-ws does not answer `subscribe`: the nearest sign that the server listens
  // is its connection_ack (the header editor's token was taken) and the subscribe frame sent.
  const subscribed = () => {
    const seen = frames();
    return (
      seen.some((f) => f.startsWith("<") && f.includes('"connection_ack"')) &&
      seen.some((f) => f.startsWith(">") && f.includes('"subscribe"'))
    );
  };
  try {
    await waitUntil("subscribed", subscribed, 30);
  } catch {
    const text = await editorText(page, ".graphiql-response");
    throw new Error(`GraphiQL did not subscribe over ${socketUrl}: ${text}\n${trace()}`);
  }
  // An event is only delivered to a subscription already running on the server, and the frame
  // leaving the browser does not quite mean that: a sign-in that came too soon is made again,
  // and the event looked for is always the latest sign-in's.
  let sessionId;
  let attempts = 0;
  let shown = false;
  while (!shown && attempts < 3) {
    attempts += 1;
    const login = await gql(
      base,
      "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { accessToken } }",
      { u: username, p: password },
    );
    sessionId = claims(login.login.accessToken).jti;
    const deadline = Date.now() + 10000;
    while (!shown && Date.now() < deadline) {
      shown = (await editorText(page, ".graphiql-response")).includes(sessionId);
      if (!shown) await new Promise((r) => setTimeout(r, 200));
    }
  }
  await page.screenshot({ path: join(artifacts, "graphiql-subscription.png") });
  const text = await editorText(page, ".graphiql-response");
  if (!shown) {
    throw new Error(
      `the result panel never showed session ${sessionId} (${attempts} sign-ins): ${text}\n` +
        trace(),
    );
  }
  const event = JSON.parse(text).data?.accountEvents;
  const kind = "SESSION_STARTED";
  if (event?.kind !== kind || event?.sessionId !== sessionId) {
    throw new Error(`unexpected event (wanted ${kind} of session ${sessionId}): ${text}`);
  }
  // Stopped as a person would, with the same button: GraphiQL ends the subscription on the
  // socket (`complete`), which must not upset the page either.
  await page.click(".graphiql-execute-button");
  await waitUntil(
    "GraphiQL completed the subscription",
    async () => frames().some((f) => f.startsWith(">") && f.includes('"complete"')),
    10,
  );
  if (setup.problems.length) throw new Error(setup.problems.join("\n"));
  await page.close();
  const retried = attempts > 1 ? ` (${attempts} sign-ins needed)` : "";
  return `accountEvents delivered ${JSON.stringify(event)} over ${socketUrl}${retried}`;
}

async function main() {
  const work = mkdtempSync(join(tmpdir(), "user-api-browser-"));
  mkdirSync(artifacts, { recursive: true });
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const env = Object.fromEntries(
    Object.entries(process.env).filter(
      ([key]) => !/^(DATABASE_|REDIS_|JWT_|SMTP_|MAIL_|EMAIL_|RATE_LIMIT_)/.test(key),
    ),
  );
  const log = join(work, "server.log");
  const server = spawn(binary, [], {
    cwd: work,
    env: { ...env, BIND: `127.0.0.1:${port}`, RUST_LOG: "info" },
    stdio: ["ignore", openSync(log, "w"), openSync(log, "a")],
  });
  let browser;
  const problems = [];
  try {
    await waitUntil("the server is ready", async () => (await fetch(`${base}/readyz`)).ok);
    const username = "browser_user";
    const password = "correct horse battery";
    const registered = await gql(
      base,
      "mutation($i: RegisterInput!) { register(input: $i) { accessToken user { id } } }",
      { i: { username, email: "browser@example.com", password } },
    );
    const user = {
      username,
      password,
      token: registered.register.accessToken,
      userId: registered.register.user.id,
    };

    browser = await chromium.launch({
      executablePath: browserPath,
      // Every name but the loopback address resolves to nothing: the page cannot reach the
      // internet even by accident, as on a machine with no network.
      args: ["--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1", "--no-sandbox"],
    });
    const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    await context.route("**/*", (route) => {
      const url = new URL(route.request().url());
      if (url.protocol === "data:" || url.host === `127.0.0.1:${port}`) return route.continue();
      problems.push(`request to another host: ${url.href}`);
      return route.abort();
    });
    const setup = { context, base, port, problems };

    console.log(`graphiql: ok — ${await meScenario(setup, user)} in the browser`);
    console.log(`graphiql: ok — ${await subscriptionScenario(setup, user)} in the browser`);
  } catch (error) {
    console.error(`FAIL: ${error.message}`);
    if (problems.length) console.error(problems.join("\n"));
    console.error(`--- server log (${log})\n${readFileSync(log, "utf8").slice(-4000)}`);
    process.exitCode = 1;
  } finally {
    await browser?.close();
    server.kill("SIGTERM");
    await new Promise((r) => server.once("exit", r));
    if (!process.exitCode) rmSync(work, { recursive: true, force: true });
  }
}

await main();
