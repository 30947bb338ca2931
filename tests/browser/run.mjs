// Drives a real Chromium (Debian's, never a downloaded one) with
// puppeteer-core through one scenario of tests/tests/browser.rs and prints
// what happened as one JSON line.
//
//   node run.mjs '{"scenario": "...", "page": "http://…", ...}'
//
// EDGEHOSE_NPM: the bootstrap's npm folder (puppeteer-core);
// EDGEHOSE_CHROMIUM: the browser binary.
//
// Scenarios:
//   analytics-next   {page, endpoint}: load the page, make its calls (track,
//                    page, identify); with ?strategy=batching, close the page
//                    at once so only the unload flush can carry them.
//   tracker          {page, endpoint, next}: track, page and identify, then
//                    edgehose.flush(); two more events, then close the page
//                    (they leave by sendBeacon); `next` (same origin) reports
//                    the beacons and the anonymous id kept.
//   tracker-refused  {page, endpoint, run, wait_ms}: one event and a flush from
//                    an origin the edge refuses, then `wait_ms` of watching
//                    for retries.
//   tracker-events   {page, endpoint, run, count, flush, wait_ms}: `count`
//                    events (and a flush, if asked), then `wait_ms` of
//                    watching what the tracker sends.
//   (analytics-next and tracker-events take `align_ms`: their calls start
//   just after the wall clock passes a multiple of it.)
//   snowplow         {page, endpoint, wait_ms}: Snowplow's browser tracker
//                    makes its calls; then one more event, and the page
//                    closes, leaving it to the tracker's flush at unload.
//   posthog          the same with posthog-js.
//   report           {page}: open `edgehose receipts --html`'s page and read
//                    back what it shows: each key's total row as rendered,
//                    and each minute's bar segments as drawn (their rendered
//                    heights over the chart's scale, in events).
import { mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const require = createRequire(`${process.env.EDGEHOSE_NPM}/package.json`);
const puppeteer = (await import(pathToFileURL(require.resolve("puppeteer-core")).href)).default;

const args = JSON.parse(process.argv[2]);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const profile = mkdtempSync(join(tmpdir(), "edgehose-chromium-"));
const browser = await puppeteer.launch({
  executablePath: process.env.EDGEHOSE_CHROMIUM,
  headless: true,
  userDataDir: profile,
  // Without the background-networking switches Chromium keeps trying to
  // reach Google's hosts, which a closed network refuses.
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});

// Every request the pages make to the edge, every answer, and the console.
// `max_in_flight`: the most requests to the edge open at once.
const seen = { requests: [], responses: [], failed: [], console: [], max_in_flight: 0 };
let inFlight = 0;
function watch(page) {
  const ours = (u) => u.startsWith(args.endpoint);
  page.on("request", (r) => {
    if (!ours(r.url())) return;
    seen.requests.push({ method: r.method(), url: r.url(), type: r.resourceType() });
    seen.max_in_flight = Math.max(seen.max_in_flight, ++inFlight);
  });
  // Answered (the tracker acts on the status) or failed: no longer open.
  page.on("response", (r) => ours(r.url()) && inFlight--);
  page.on("requestfailed", (r) => ours(r.url()) && inFlight--);
  page.on("response", (r) => {
    if (!ours(r.url())) return;
    const h = r.headers();
    const answer = { url: r.url(), status: r.status(), method: r.request().method(), at: Date.now() };
    if (h["retry-after"] !== undefined) {
      answer.retry_after = h["retry-after"];
      answer.expose = h["access-control-expose-headers"] ?? null;
    }
    seen.responses.push(answer);
  });
  page.on("requestfailed", (r) => ours(r.url()) && seen.failed.push({ url: r.url(), error: r.failure()?.errorText }));
  page.on("console", (m) => seen.console.push(`${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => seen.console.push(`pageerror: ${e.message}`));
  return page;
}

async function open(url) {
  const page = watch(await browser.newPage());
  await page.goto(url, { waitUntil: "load" });
  return page;
}

// With `align_ms`, waits until a multiple of it has just passed on the
// wall clock: a test whose rate-limit windows are aligned to the epoch
// starts its calls at a window's start however long the browser took.
async function aligned() {
  if (!args.align_ms) return;
  await sleep(args.align_ms - (Date.now() % args.align_ms) + 50);
}

const result = { scenario: args.scenario };
try {
  if (args.scenario === "analytics-next") {
    const page = await open(args.page);
    await page.waitForFunction(() => typeof window.calls === "function");
    await aligned();
    result.calls = await page.evaluate(() => window.calls());
    if (args.page.includes("strategy=batching")) {
      result.sent_before_close = seen.requests.filter((r) => r.method === "POST" && !r.url.endsWith("/m")).length;
      await page.close({ runBeforeUnload: true });
    } else {
      // The metrics flush (every second) and any retry.
      await sleep(2500);
    }
    await sleep(args.wait_ms ?? 3000);
  } else if (args.scenario === "snowplow" || args.scenario === "posthog") {
    const page = await open(args.page);
    await page.waitForFunction(() => typeof window.calls === "function");
    await page.evaluate(() => window.calls());
    await sleep(2000);
    result.sent_before_leaving = seen.requests.filter((r) => r.method !== "OPTIONS").length;
    await page.evaluate(() => window.leave());
    await page.close({ runBeforeUnload: true });
    await sleep(args.wait_ms ?? 3000);
  } else if (args.scenario === "tracker") {
    const page = await open(args.page);
    const run = args.run;
    result.flushed = await page.evaluate(async (run) => {
      edgehose.track("signup_click", { run, n: 1 });
      edgehose.page({ run, n: 2 });
      edgehose.identify(`user-${run}`, { run, n: 3, plan: "pro" });
      return edgehose.flush();
    }, run);
    await page.evaluate((run) => {
      edgehose.track("pricing_view", { run, n: 4 });
      edgehose.track("checkout_click", { run, n: 5 });
    }, run);
    await page.close({ runBeforeUnload: true });
    await sleep(args.wait_ms ?? 3000);
    const next = await open(args.next);
    result.next = await next.evaluate(() => ({
      beacons: Number(localStorage.getItem("test.beacons") || 0),
      anonymous_id: localStorage.getItem("edgehose.anonymous_id"),
      user_id: localStorage.getItem("edgehose.user_id"),
    }));
  } else if (args.scenario === "tracker-refused") {
    const page = await open(args.page);
    result.flushed = await page.evaluate(async (run) => {
      edgehose.track("refused_click", { run, n: 1 });
      return edgehose.flush();
    }, args.run);
    await sleep(args.wait_ms ?? 5000);
    // Another event after the refusal: the tracker has stopped.
    result.flushed_after = await page.evaluate(async (run) => {
      edgehose.track("refused_again", { run, n: 2 });
      return edgehose.flush();
    }, args.run);
    await sleep(1000);
  } else if (args.scenario === "tracker-events") {
    const page = await open(args.page);
    await aligned();
    result.flushed = await page.evaluate(
      async ({ run, count, flush }) => {
        for (let n = 1; n <= count; n++) edgehose.track("flaky_click", { run, n });
        return flush ? edgehose.flush() : null;
      },
      { run: args.run, count: args.count, flush: !!args.flush },
    );
    await sleep(args.wait_ms ?? 5000);
  } else if (args.scenario === "report") {
    const page = await open(args.page);
    result.report = await page.evaluate(() => {
      const keys = [...document.querySelectorAll("section.key")].map((s) => {
        const svg = s.querySelector("svg.chart");
        const scale = Number(svg.dataset.scale);
        const box = svg.getBoundingClientRect();
        const minutes = [...s.querySelectorAll("g.minute")].map((g) => {
          const drawn = {};
          for (const r of g.querySelectorAll("rect")) {
            drawn[r.getAttribute("class")] = Math.round(r.getBoundingClientRect().height / scale);
          }
          return { minute: Number(g.dataset.minute), accepted: Number(g.dataset.accepted), drawn };
        });
        // biome-ignore-start lint/performance/useDomNodeTextContent: the report is read as a person sees it, rendered
        const total = [...s.querySelectorAll("tr.total td")].map((td) => td.innerText.trim());
        const title = s.querySelector("h2").innerText;
        // biome-ignore-end lint/performance/useDomNodeTextContent: the same
        return { key: s.dataset.key, title, total, width: box.width, height: box.height, minutes };
      });
      return { title: document.title, passes: document.querySelector(".verdict")?.dataset.passes, keys };
    });
  } else {
    throw new Error(`unknown scenario ${args.scenario}`);
  }
} catch (e) {
  result.error = String(e?.stack ?? e);
} finally {
  await browser.close();
  rmSync(profile, { recursive: true, force: true });
}
console.log(JSON.stringify({ ...result, ...seen }));
