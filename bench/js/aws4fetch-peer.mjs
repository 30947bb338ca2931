// What a user would write instead of edgehose: a JavaScript Worker doing the
// same job with the aws4fetch package. It reads and parses the body, applies
// the same limits, wraps each event in the same envelope, answers 200, and in
// waitUntil base64-packs the lines into one record, signs a PutRecordBatch
// with SigV4 and sends it (retrying a failed call a few times).
import { AwsClient } from "./aws4fetch.mjs";

const MAX_BODY = 1024 * 1024;
const MAX_EVENT = 32 * 1024;
const MAX_EVENTS = 500;

const json = (status, body) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });

export default {
  async fetch(request, env, ctx) {
    const url = new URL(request.url);
    if (url.pathname !== "/v1/events") return json(404, { error: "not_found" });
    if (request.method !== "POST") return json(405, { error: "method_not_allowed" });
    const text = await request.text();
    if (text.length > MAX_BODY) return json(413, { error: "body_too_large" });
    const receivedAt = Date.now();
    let events;
    try {
      const v = JSON.parse(text);
      events = Array.isArray(v) ? v : [v];
    } catch {
      events = null;
    }
    const lines = [];
    if (events === null) {
      lines.push(
        JSON.stringify({
          v: 1,
          id: crypto.randomUUID(),
          received_at: receivedAt,
          quarantine: { reason: "invalid JSON", data: text },
        }),
      );
    } else {
      if (events.length > MAX_EVENTS) return json(413, { error: "too_many_events" });
      for (const e of events) {
        const raw = JSON.stringify(e);
        if (raw.length > MAX_EVENT) return json(413, { error: "event_too_large" });
        const id = typeof e.message_id === "string" && e.message_id.length <= 100 ? e.message_id : crypto.randomUUID();
        const ts = typeof e.ts === "number" ? e.ts : Date.parse(e.ts);
        const sent = typeof e.sent_at === "number" ? e.sent_at : Date.parse(e.sent_at);
        const time = Number.isFinite(ts) ? (Number.isFinite(sent) ? receivedAt - (sent - ts) : ts) : receivedAt;
        lines.push(
          `{"v":1,"id":${JSON.stringify(id)},"received_at":${receivedAt},"event_time":${time},"event":${raw}}`,
        );
      }
    }
    ctx.waitUntil(forward(env, lines));
    return json(200, { accepted: events === null ? 1 : events.length });
  },
};

function base64(bytes) {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

async function forward(env, lines) {
  const data = base64(new TextEncoder().encode(`${lines.join("\n")}\n`));
  const body = JSON.stringify({ DeliveryStreamName: env.FIREHOSE_STREAM, Records: [{ Data: data }] });
  const aws = new AwsClient({
    accessKeyId: env.AWS_ACCESS_KEY_ID,
    secretAccessKey: env.AWS_SECRET_ACCESS_KEY,
    service: "firehose",
    region: env.AWS_REGION,
    retries: 0,
  });
  for (let attempt = 0; attempt < 5; attempt++) {
    const r = await aws.fetch(env.FIREHOSE_ENDPOINT, {
      method: "POST",
      headers: { "content-type": "application/x-amz-json-1.1", "x-amz-target": "Firehose_20150804.PutRecordBatch" },
      body,
    });
    const out = await r.json().catch(() => null);
    if (r.ok && out && out.FailedPutCount === 0) return;
    await new Promise((res) => setTimeout(res, 50 * 2 ** attempt));
  }
  console.error(`lost ${lines.length} events`);
}
