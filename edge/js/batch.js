// The consumer's side of a queue: the batch the runtime hands it, read in one
// call and settled in one (edge/src/js.rs binds each export).

// A queue batch: each message's id, delivery count and body (null when the
// body is not text, which only a producer other than this Worker can send).
export function queue_messages(batch) {
  return batch.messages.map((m) => [m.id, m.attempts, typeof m.body === "string" ? m.body : null]);
}
// 0: ack; n > 0: redeliver n - 1 seconds from now.
export function queue_settle(batch, actions) {
  batch.messages.forEach((m, i) => {
    if (actions[i] === 0) m.ack();
    else m.retry({ delaySeconds: actions[i] - 1 });
  });
}
export function queue_name(batch) {
  return batch.queue;
}
// A body that is not text, as text: base64 for bytes, else its JSON.
export function queue_body_text(batch, i) {
  const b = batch.messages[i].body;
  if (b instanceof ArrayBuffer || ArrayBuffer.isView(b)) {
    const u = b instanceof ArrayBuffer ? new Uint8Array(b) : new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
    let s = "";
    for (const x of u) s += String.fromCharCode(x);
    return ["base64", btoa(s)];
  }
  try {
    return ["json", JSON.stringify(b)];
  } catch {
    return ["text", String(b)];
  }
}
