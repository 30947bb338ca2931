// edgehose.js: a browser tracker for edgehose, with no dependencies.
//
//   <script src="edgehose.min.js"></script>
//   <script>
//     edgehose.init({ endpoint: "https://events.example.com", writeKey: "pk_live_…" });
//     edgehose.page();
//     edgehose.track("signup_click", { plan: "pro" });
//   </script>
//
// Events are schema v1 (`POST /v1/events`): `event`, `message_id`, `ts`,
// `sent_at`, `anonymous_id`, `user_id`, `url`, `referrer`, `properties`.
// They are sent as `text/plain` with the write key in the query string, so a
// cross-origin request needs no CORS preflight and `navigator.sendBeacon`
// (which cannot set headers) carries the same request when the page goes
// away. Batches go out when `batchSize` events are waiting, when they would
// pass `maxBytes`, or `flushInterval` ms after the first of them. A failed
// batch waits with exponential backoff and full jitter, one batch at a time
// however many events are waiting (so an outage never turns into a storm of
// retries); a 4xx answer is never retried (401, 403 and 404 stop the
// tracker: its settings are wrong and every later request would fail too),
// but 429 and 503: past a rate limit, or while the edge cannot take events,
// the batch waits as long as `Retry-After` says (and up to a second more, so
// a page's many trackers do not all return at once) and is sent again,
// without counting against `maxRetries` (for at most `maxRateLimitMs` in
// all): a limit delays events, it does not drop them. `writeKey` may be a
// signed ingest token (docs/src/abuse.md, "Signed ingest tokens").
// Built by tools/build-tracker into edgehose.min.js, which is committed.

const ID_KEY = "edgehose.anonymous_id";
const USER_KEY = "edgehose.user_id";

let settings;
let queue = [];
let timer = 0;
let failures = 0;
let limitedMs = 0;
// While a batch waits out a backoff or a Retry-After, no flush sends before
// its time: not the calls' own, not the page's.
let resumeAt = 0;
let stopped = false;
let chain = Promise.resolve(true);
let anonymousId;
let userId;
const memory = {};

function load(key) {
  try {
    return localStorage.getItem(key);
  } catch {
    return memory[key];
  }
}

function save(key, value) {
  try {
    localStorage.setItem(key, value);
  } catch {
    memory[key] = value;
  }
}

// RFC 4122 version 4; crypto.randomUUID exists only in secure contexts.
function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 15) | 64;
  b[8] = (b[8] & 63) | 128;
  const h = [...b].map((x) => (x + 256).toString(16).slice(1)).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

const now = () => new Date().toISOString();

/** Starts the tracker; calls made before it wait in the queue. */
export function init(options) {
  if (!settings) {
    addEventListener("pagehide", leave);
    addEventListener("visibilitychange", () => document.visibilityState === "hidden" && leave());
  }
  settings = {
    batchSize: 20,
    flushInterval: 2000,
    maxBytes: 60000,
    maxRetries: 10,
    maxRateLimitMs: 3600000,
    ...options,
  };
  settings.endpoint = String(settings.endpoint || "").replace(/\/+$/, "");
  anonymousId = load(ID_KEY);
  if (!anonymousId) {
    anonymousId = uuid();
    save(ID_KEY, anonymousId);
  }
  userId = load(USER_KEY) || undefined;
  for (const e of queue) e.anonymous_id = anonymousId;
  schedule(settings.flushInterval);
}

function add(event) {
  if (stopped) return;
  event.message_id = uuid();
  event.ts = now();
  if (anonymousId) event.anonymous_id = anonymousId;
  if (userId) event.user_id = userId;
  queue.push(event);
  if (!settings) return;
  // While a failed batch waits out its backoff, new events wait with it.
  if (queue.length >= settings.batchSize && !failures) flush();
  else schedule(settings.flushInterval);
}

/** A named event with free-form properties. */
export function track(name, properties) {
  add({ event: name, properties: properties || {} });
}

/** A page view: the page's URL and referrer, and any properties. */
// Schema v1 takes URLs of up to 2,048 characters.
export function page(properties) {
  const e = { event: "page", url: location.href.slice(0, 2048), properties: properties || {} };
  if (document.referrer) e.referrer = document.referrer.slice(0, 2048);
  add(e);
}

/** Names the user from now on (kept across pages) and sends their traits. */
export function identify(id, traits) {
  userId = String(id);
  save(USER_KEY, userId);
  add({ event: "identify", properties: traits || {} });
}

function schedule(ms) {
  if (!timer && queue.length) timer = setTimeout(flush, ms);
}

function url() {
  const key = settings.writeKey;
  return `${settings.endpoint}/v1/events${key ? `?key=${encodeURIComponent(key)}` : ""}`;
}

// The first events of the queue that fit `maxBytes` (at least one), with
// their `sent_at`, as the request body.
function take() {
  const at = now();
  const parts = [];
  let size = 2;
  while (queue.length && parts.length < settings.batchSize) {
    let s;
    try {
      s = JSON.stringify({ ...queue[0], sent_at: at });
    } catch (e) {
      // A property JSON cannot hold (a BigInt, a cycle): that event alone is dropped.
      console.warn("edgehose: dropped an event:", e);
      queue.shift();
      continue;
    }
    if (parts.length && size + s.length > settings.maxBytes) break;
    parts.push(s);
    size += s.length + 1;
    queue.shift();
  }
  return parts;
}

const body = (parts) => `[${parts.join(",")}]`;

// Sends one batch: ["ok"] when it was delivered, ["drop"] when it must not
// be retried (a 4xx but 408 and 429), else ["retry", ms]: with the wait a
// 429 or 503 asked for in `Retry-After` (whole seconds), or none.
async function post(parts) {
  let status = 0;
  let wait;
  try {
    const res = await fetch(url(), {
      method: "POST",
      body: body(parts),
      headers: { "content-type": "text/plain" },
      credentials: "omit",
      keepalive: true,
    });
    status = res.status;
    const after = Number.parseInt(res.headers.get("retry-after") || "", 10);
    if ((status === 429 || status === 503) && after >= 0) wait = Math.min(after, 3600) * 1000;
  } catch {
    // Offline, or the request never reached the edge: retried.
  }
  if ([401, 403, 404].includes(status)) {
    stopped = true;
    queue = [];
    console.warn(`edgehose: ${url()} answered ${status}; not sending any more`);
  }
  if (status > 199 && status < 300) return ["ok"];
  return status > 399 && status < 500 && status !== 408 && status !== 429 ? ["drop"] : ["retry", wait];
}

// Sends what is queued, one batch at a time; resolves to whether all of it
// was delivered. After a failure the batch goes back to the queue's front
// and one later flush tries again.
async function drain() {
  let all = true;
  if (Date.now() < resumeAt) {
    // Too early (a flush cleared the timer that waits for it): wait again.
    if (!timer) timer = setTimeout(flush, resumeAt - Date.now());
    return false;
  }
  while (queue.length && !stopped) {
    const parts = take();
    const [outcome, wait] = await post(parts);
    if (outcome !== "retry") {
      failures = 0;
      limitedMs = 0;
      all = all && outcome === "ok";
      continue;
    }
    let delay;
    if (wait !== undefined && limitedMs + wait <= settings.maxRateLimitMs) {
      // Told how long: wait that (and a jittered second), counting no attempt.
      delay = wait + 1000 * Math.random();
      limitedMs += delay;
      failures = Math.max(failures, 1);
    } else if (++failures > settings.maxRetries) {
      console.warn(`edgehose: dropped ${parts.length} events after ${failures} attempts`);
      failures = 0;
      limitedMs = 0;
      all = false;
      continue;
    } else {
      delay = Math.min(30000, 500 * 2 ** failures) * Math.random();
    }
    queue.unshift(...parts.map((s) => JSON.parse(s)));
    resumeAt = Date.now() + delay;
    timer = setTimeout(flush, delay);
    return false;
  }
  return all && !stopped;
}

/** Sends everything queued now; resolves to whether all of it landed. */
export function flush() {
  clearTimeout(timer);
  timer = 0;
  if (!settings) return Promise.resolve(false);
  chain = chain.then(drain, drain);
  return chain;
}

// The page is going away (or hidden, which on mobile may be the last
// chance): hand every queued event to the browser, which sends it after
// the page is gone.
function leave() {
  clearTimeout(timer);
  timer = 0;
  if (!settings || stopped) return;
  while (queue.length) {
    const parts = take();
    const blob = new Blob([body(parts)], { type: "text/plain" });
    if (!navigator.sendBeacon?.(url(), blob)) {
      post(parts);
    }
  }
}
