// GraphiQL in a real browser, with no network but loopback.
//
//     node .ci/browser/graphiql.mjs [path/to/user-api]     # default: target/debug/user-api
//
// Starts the server on the embedded SQLite default on a spare loopback port, registers a user,
// then drives Debian's chromium (/usr/bin/chromium, through playwright-core) as a person would:
// opens /graphiql, finds the Authorization template in the header editor and puts the token
// in it, types `{ me { id username } }`, runs it, and reads the user back from the result
// panel. Every host but the server's resolves to nothing and any request to one is aborted
// and reported; any console error or uncaught exception fails the check too. Screenshots go to
// .ci/artifacts/ (git-ignored). Exit status 0 when every step passed.

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
    const registered = await gql(
      base,
      "mutation($i: RegisterInput!) { register(input: $i) { accessToken user { id } } }",
      { i: { username, email: "browser@example.com", password: "correct horse battery" } },
    );
    const token = registered.register.accessToken;
    const userId = registered.register.user.id;

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
    const page = await context.newPage();
    page.on("console", (message) => {
      if (message.type() === "error") problems.push(`console error: ${message.text()}`);
    });
    page.on("pageerror", (error) => problems.push(`uncaught: ${error.message}`));
    page.on("requestfailed", (request) => {
      problems.push(`failed request: ${request.url()} (${request.failure()?.errorText})`);
    });

    await page.goto(`${base}/graphiql`);
    await page.waitForSelector(".graphiql-query-editor .CodeMirror", { timeout: 30000 });
    const headers = await page.$$eval(".graphiql-editor-tool .CodeMirror", (editors) =>
      editors.map((el) => el.CodeMirror.getValue()),
    );
    if (!headers.some((text) => text.includes('"Authorization": "Bearer "'))) {
      throw new Error(`no Authorization template in the header editor: ${JSON.stringify(headers)}`);
    }
    await page.screenshot({ path: join(artifacts, "graphiql-start.png") });
    // The header editor is the one with the template in it.
    const headerIndex = headers.findIndex((text) => text.includes("Authorization"));
    const headerEditor = page.locator(".graphiql-editor-tool .CodeMirror").nth(headerIndex);
    await typeInto(page, headerEditor, JSON.stringify({ Authorization: `Bearer ${token}` }, null, 2));
    await typeInto(page, page.locator(".graphiql-query-editor .CodeMirror"), "{ me { id username } }");
    await page.click(".graphiql-execute-button");
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
    if (problems.length) throw new Error(problems.join("\n"));
    console.log(`graphiql: ok — { me } answered ${JSON.stringify(result.data.me)} in the browser`);
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
