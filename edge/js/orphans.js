// What a panicked instance held: kept in the isolate's JavaScript global,
// which outlives the wasm instance a panic replaces, and handed on to the
// events queue of the request remember() (head.js) last noted.

import { strings } from "./head.js";

export function orphans_put(bytes, ends) {
  globalThis.__edgehose_orphans ??= [];
  globalThis.__edgehose_orphans.push(...strings(bytes, ends));
  hand_on();
}
export function orphans_take() {
  const held = globalThis.__edgehose_orphans;
  return held && held.length > 0 ? held.splice(0) : [];
}
// Sends what a panicked instance held to the events queue (its consumer
// delivers it) without waiting for another request; a batch the queue
// refuses stays held for the next request to resend.
function hand_on() {
  const held = globalThis.__edgehose_orphans;
  const to = globalThis.__edgehose_handoff;
  const queue = to?.env?.EVENTS_QUEUE ?? to?.env?.DEAD_LETTER_QUEUE;
  if (!held || held.length === 0 || !queue) return;
  const lines = held.splice(0);
  const utf8 = new TextEncoder();
  const batches = [];
  let batch = [];
  let bytes = 0;
  for (const line of lines) {
    const n = utf8.encode(line).length + 100;
    if (batch.length > 0 && (batch.length === 100 || bytes + n > 250000)) {
      batches.push(batch);
      batch = [];
      bytes = 0;
    }
    batch.push(line);
    bytes += n;
  }
  batches.push(batch);
  const sends = batches.map((b) =>
    queue.sendBatch(b.map((body) => ({ body, contentType: "text" }))).then(
      () => b.length,
      (e) => {
        globalThis.__edgehose_orphans.push(...b);
        console.error(
          `edgehose: the queue refused ${b.length} events a panicked instance held (${e}); the next request resends them`,
        );
        return 0;
      },
    ),
  );
  const done = Promise.all(sends).then((n) => {
    const handed = n.reduce((a, b) => a + b, 0);
    if (handed > 0) console.error(`edgehose: handed ${handed} events a panicked instance held to the queue`);
  });
  try {
    to.ctx.waitUntil(done);
  } catch {
    // That request is over; the sends run as long as the isolate does.
  }
}
