#!/usr/bin/env node
// Headless-Chromium check of a nitro-rs page, driven by playwright-core against a system Chromium.
//
//   node tests/browser/chat.mjs <page-url> <screenshot-path> [scenario]
//
// scenario defaults to "chat" (the seed WebSocket chat in examples/websocket); "reload-overlay"
// checks nitro dev's hot reload on the project folder named by $NITRO_PROJECT.
// Env: CHROMIUM = path to the Chromium binary (default /usr/bin/chromium);
//      COLOR_SCHEME=dark to emulate prefers-color-scheme: dark (default light).
//
// Prints exactly one JSON line on stdout:
//   success: {"ok":true,"scenario":"chat","peerId":"…","messages":N,"ms":…}   exit 0
//   failure: {"ok":false,"error":"…","step":"…","console":[…],…}              exit 1
// On failure the page's console log is also written to stderr, and a screenshot is saved if possible.
// Every request the page makes (HTTP and WebSocket) must go to a loopback host: that is the
// offline check (no CDN scripts, fonts or images).

import { chromium } from "playwright-core";
import { randomUUID } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const OVERALL_TIMEOUT_MS = 30_000;
const LOOPBACK_HOSTS = new Set(["127.0.0.1", "localhost", "[::1]", "::1"]);
const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

// ---------------------------------------------------------------- scenarios
// Each scenario gets (page, ctx) once the page has loaded and returns extra fields for the
// success line. Use ctx.step(name, fn) so that a failure says where it happened.

const scenarios = {
  /** The seed chat: connect, get a welcome, send a message and see our own echo, ping → pong. */
  async chat(page, ctx) {
    await ctx.step("wait for #status to start with 'open'", () =>
      page.waitForFunction(() => (document.querySelector("#status")?.textContent ?? "").trim().startsWith("open")),
    );

    const welcome = await ctx.step("wait for the welcome message (欢迎 <id>!)", async () => {
      const handle = await page.waitForFunction(() => {
        for (const m of document.querySelectorAll(".message")) {
          const text = m.querySelector(".text")?.textContent ?? "";
          if (text.includes("欢迎")) return { text, user: m.dataset.user ?? null };
        }
        return null;
      });
      return handle.jsonValue();
    });
    const match = /欢迎\s+(\S+?)\s*[!！]/.exec(welcome.text);
    if (!match) throw new Error(`welcome message has no peer id: ${JSON.stringify(welcome.text)}`);
    const peerId = match[1];
    if (welcome.user !== "server") {
      throw new Error(`welcome message should come from user "server", data-user was ${JSON.stringify(welcome.user)}`);
    }

    const text = `hello from chromium ${randomUUID().slice(0, 8)}`;
    await ctx.step("type a message into #input and press Enter", async () => {
      const box = page.locator("#input");
      await box.click();
      await box.pressSequentially(text);
      await box.press("Enter");
    });
    await ctx.step(`wait for our own message with data-user=${peerId}`, () =>
      page.waitForFunction(
        ([want, id]) =>
          [...document.querySelectorAll(".message")].some(
            (m) => m.dataset.user === id && m.querySelector(".text")?.textContent === want,
          ),
        [text, peerId],
      ),
    );
    const leftover = await page.locator("#input").inputValue();
    if (leftover !== "") throw new Error(`#input was not cleared after sending (still ${JSON.stringify(leftover)})`);

    const pongsBefore = await page.evaluate(countPongs);
    await ctx.step("click #ping", () => page.locator("#ping").click());
    await ctx.step("wait for a pong from the server", () =>
      page.waitForFunction((before) => {
        const pongs = [...document.querySelectorAll(".message")].filter(
          (m) => m.dataset.user === "server" && m.querySelector(".text")?.textContent === "pong",
        );
        return pongs.length > before;
      }, pongsBefore),
    );

    await ctx.step("full-page screenshot", () => screenshot(page, ctx.screenshotPath));
    ctx.screenshotTaken = true;
    const messages = await page.locator(".message").count();
    const status = await page.locator("#status").textContent();
    return { peerId, messages, status };
  },
};

/** The same chat through the page's fallback for browsers without WebSocket: server-sent
 * events and POST (`?transport=sse`, routes/sse.get.rs and sse.post.rs). */
scenarios["chat-sse"] = scenarios.chat;

/**
 * Hot reload (issue #3), for `nitro dev` on a copy of examples/websocket whose folder is in
 * $NITRO_PROJECT: editing index.html reloads the page by itself; breaking routes/_ws.rs shows
 * the error overlay (the screenshot); fixing it removes the overlay.
 */
scenarios["reload-overlay"] = async function reloadOverlay(page, ctx) {
  const dir = process.env.NITRO_PROJECT;
  if (!dir) throw new Error("set NITRO_PROJECT to the project folder nitro dev serves");
  const devSocketOpen = () =>
    ctx.step("wait for the dev socket to open", () =>
      page.waitForFunction(() => window.__nitroDev?.socket?.readyState === WebSocket.OPEN),
    );
  await devSocketOpen();

  const indexPath = path.join(dir, "index.html");
  const html = fs.readFileSync(indexPath, "utf8");
  const marker = `reloaded-${randomUUID().slice(0, 8)}`;
  await ctx.step("edit index.html and wait for the page to reload by itself", async () => {
    const loaded = page.waitForEvent("load");
    fs.writeFileSync(indexPath, html.replace("</body>", `<p id="nitro-test-marker">${marker}</p>\n</body>`));
    await loaded;
    await page.waitForFunction((m) => document.querySelector("#nitro-test-marker")?.textContent === m, marker);
  });
  await devSocketOpen();
  await ctx.step("wait for the chat to connect again", () =>
    page.waitForFunction(() => (document.querySelector("#status")?.textContent ?? "").trim().startsWith("open")),
  );

  const routePath = path.join(dir, "routes", "_ws.rs");
  const good = fs.readFileSync(routePath, "utf8");
  const head = "pub async fn message(peer: Peer, message: Message) {\n";
  if (!good.includes(head)) throw new Error("routes/_ws.rs does not have the expected `message` hook");
  await ctx.step("break routes/_ws.rs and wait for the error overlay", async () => {
    fs.writeFileSync(routePath, good.replace(head, `${head}    let oops: u32 = "not a number";\n`));
    await page.waitForFunction(() =>
      (document.querySelector("nitro-dev-overlay")?.shadowRoot?.querySelector("pre")?.textContent ?? "").includes(
        "routes/_ws.rs:19:",
      ),
    );
  });
  const text = await page.evaluate(
    () => document.querySelector("nitro-dev-overlay").shadowRoot.querySelector("pre").textContent,
  );
  await ctx.step("screenshot of the overlay", () => screenshot(page, ctx.screenshotPath));
  ctx.screenshotTaken = true;

  await ctx.step("fix routes/_ws.rs and wait for the overlay to go away", async () => {
    fs.writeFileSync(routePath, good);
    await page.waitForFunction(() => !document.querySelector("nitro-dev-overlay"));
  });
  return { marker, overlay: text.split("\n")[0] };
};

function countPongs() {
  return [...document.querySelectorAll(".message")].filter(
    (m) => m.dataset.user === "server" && m.querySelector(".text")?.textContent === "pong",
  ).length;
}

// ---------------------------------------------------------------- plumbing

function usage(message) {
  const names = Object.keys(scenarios).join("|");
  process.stderr.write(`${message}\nusage: node tests/browser/chat.mjs <page-url> <screenshot-path> [${names}]\n`);
  process.exit(2);
}

/** Returns a reason string when `url` leaves the machine, null when it is fine. */
function offlineViolation(url) {
  let u;
  try {
    u = new URL(url);
  } catch {
    return `unparsable URL ${url}`;
  }
  if (["data:", "blob:", "about:"].includes(u.protocol)) return null;
  if (!["http:", "https:", "ws:", "wss:"].includes(u.protocol)) return `non-loopback scheme ${u.protocol} in ${url}`;
  return LOOPBACK_HOSTS.has(u.hostname) ? null : `request to non-loopback host ${u.hostname}: ${url}`;
}

async function screenshot(page, file) {
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  // Grow the viewport to the document's height for the capture, so that sticky or fixed headers and
  // footers sit at the ends of the image instead of wherever the page happened to be scrolled.
  const viewport = page.viewportSize();
  const height = await page.evaluate(() => document.documentElement.scrollHeight).catch(() => 0);
  const grow = viewport && height > viewport.height;
  if (grow) await page.setViewportSize({ width: viewport.width, height: Math.min(height, 16_000) });
  try {
    await page.screenshot({ path: file, fullPage: true, animations: "disabled", timeout: 5_000 });
  } finally {
    if (grow) await page.setViewportSize(viewport).catch(() => {});
  }
}

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

async function main() {
  const [pageUrl, screenshotPath, scenarioName = "chat"] = process.argv.slice(2);
  if (!pageUrl || !screenshotPath) usage("missing arguments");
  const scenario = scenarios[scenarioName];
  if (!scenario) usage(`unknown scenario ${JSON.stringify(scenarioName)}`);

  const started = Date.now();
  const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), "nitro-rs-chromium-"));
  const ctx = {
    screenshotPath,
    screenshotTaken: false,
    currentStep: "launch chromium",
    consoleLog: [],
    pageErrors: [],
    offline: [],
    context: null,
    page: null,
    async step(name, fn) {
      ctx.currentStep = name;
      return fn();
    },
  };

  const run = async () => {
    ctx.context = await chromium.launchPersistentContext(userDataDir, {
      executablePath,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: { width: 1100, height: 760 },
      colorScheme: process.env.COLOR_SCHEME === "dark" ? "dark" : "light",
      timeout: 20_000,
    });
    const context = ctx.context;
    context.setDefaultTimeout(OVERALL_TIMEOUT_MS);
    context.on("request", (req) => {
      const bad = offlineViolation(req.url());
      if (bad) ctx.offline.push(bad);
    });
    const page = context.pages()[0] ?? (await context.newPage());
    ctx.page = page;
    page.on("websocket", (ws) => {
      const bad = offlineViolation(ws.url());
      if (bad) ctx.offline.push(bad);
    });
    page.on("console", (msg) => ctx.consoleLog.push(`[${msg.type()}] ${msg.text()}`));
    page.on("pageerror", (err) => {
      ctx.pageErrors.push(String(err?.stack || err));
      ctx.consoleLog.push(`[pageerror] ${err}`);
    });
    page.on("requestfailed", (req) =>
      ctx.consoleLog.push(`[requestfailed] ${req.url()} ${req.failure()?.errorText ?? ""}`),
    );

    await ctx.step(`open ${pageUrl}`, async () => {
      const url = scenarioName === "chat-sse" ? pageUrl + "?transport=sse" : pageUrl;
      const res = await page.goto(url, { waitUntil: "load" });
      if (!res || !res.ok()) throw new Error(`GET ${pageUrl} answered ${res ? res.status() : "nothing"}`);
    });
    const extra = await scenario(page, ctx);

    ctx.currentStep = "final checks";
    if (ctx.offline.length) throw new Error(`page is not offline: ${ctx.offline.join("; ")}`);
    if (ctx.pageErrors.length) throw new Error(`uncaught page error: ${ctx.pageErrors[0]}`);
    return extra;
  };

  let overallTimer;
  const overall = new Promise((_, reject) => {
    overallTimer = setTimeout(
      () => reject(new Error(`timed out after ${OVERALL_TIMEOUT_MS / 1000} s`)),
      OVERALL_TIMEOUT_MS,
    );
  });

  let exitCode = 0;
  try {
    const extra = await Promise.race([run(), overall]);
    const line = { ok: true, scenario: scenarioName, ...extra, ms: Date.now() - started };
    process.stdout.write(JSON.stringify(line) + "\n");
  } catch (err) {
    exitCode = 1;
    let screenshotSaved = ctx.screenshotTaken;
    if (ctx.page && !screenshotSaved) {
      try {
        await screenshot(ctx.page, screenshotPath);
        screenshotSaved = true;
      } catch {
        /* the browser may be gone */
      }
    }
    const line = {
      ok: false,
      scenario: scenarioName,
      error: String(err?.message ?? err).split("\n")[0],
      step: ctx.currentStep,
      offline: ctx.offline,
      screenshot: screenshotSaved ? screenshotPath : null,
      console: ctx.consoleLog,
      ms: Date.now() - started,
    };
    process.stdout.write(JSON.stringify(line) + "\n");
    process.stderr.write(`chat.mjs: ${scenarioName} failed during "${ctx.currentStep}": ${err?.message ?? err}\n`);
    process.stderr.write(`page console (${ctx.consoleLog.length} lines):\n`);
    for (const l of ctx.consoleLog) process.stderr.write(`  ${l}\n`);
  } finally {
    clearTimeout(overallTimer);
    if (ctx.context) await withTimeout(ctx.context.close(), 5_000, "closing chromium").catch(() => {});
    fs.rmSync(userDataDir, { recursive: true, force: true, maxRetries: 3 });
  }
  process.exit(exitCode);
}

main().catch((err) => {
  process.stdout.write(JSON.stringify({ ok: false, error: String(err?.message ?? err) }) + "\n");
  process.exit(1);
});
