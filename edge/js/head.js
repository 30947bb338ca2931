// The request as the Worker reads it and answers it, and the framing in which
// lists of strings cross from Rust (`Framed` in edge/src/js.rs, which binds
// these functions).

const HEAD = [
  "origin",
  "x-edgehose-key",
  "authorization",
  "content-length",
  "content-type",
  "content-encoding",
  "cf-connecting-ip",
  "user-agent",
];
// The head as lines, "=" before each value present and nothing for one absent:
// header values, the method and the serialised URL never hold a line break
// (Fetch refuses them), so one string crosses without JSON. Should one ever
// hold one, the head goes as JSON, which keeps every value whole.
export function request_head(req) {
  const h = req.headers;
  const cf = req.cf;
  const out = [req.method, req.url];
  for (const name of HEAD) out.push(h.get(name));
  if (cf) {
    const bm = cf.botManagement;
    out.push(
      cf.country,
      cf.colo,
      cf.asn,
      bm?.score,
      bm?.verifiedBot ? "1" : null,
      cf.verifiedBotCategory,
      cf.clientTrustScore,
    );
  } else out.push(null, null, null, null, null, null, null);
  out.push(h.get("cookie"), h.get("sp-anonymous"), h.get("posthog-sdk-info"));
  let lines = "";
  for (let i = 0; i < out.length; i++) {
    const v = out[i];
    const field = v === null || v === undefined ? "" : `=${v}`;
    if (field.includes("\n")) return JSON.stringify(out.map((v) => (v === null || v === undefined ? null : String(v))));
    lines += i === 0 ? field : `\n${field}`;
  }
  return lines;
}
// Strings from Rust: laid end to end, with where each ends (in UTF-16 units,
// as JavaScript counts), decoded in one call. No separator, so no character
// inside a string can split or shift them.
// ignoreBOM: a U+FEFF the strings begin with is theirs, not a byte-order mark.
const UTF8 = new TextDecoder("utf-8", { ignoreBOM: true });
export function strings(bytes, ends) {
  const all = UTF8.decode(bytes);
  const out = [];
  let start = 0;
  for (const end of ends) {
    out.push(all.slice(start, end));
    start = end;
  }
  return out;
}
export function pairs(bytes, ends) {
  const parts = strings(bytes, ends);
  const out = [];
  for (let i = 0; i + 1 < parts.length; i += 2) out.push([parts[i], parts[i + 1]]);
  return out;
}
export function respond(status, body, header_bytes, header_ends) {
  const init = { status, headers: pairs(header_bytes, header_ends) };
  // slice(): the body is a view into wasm memory; the answer gets its own copy.
  return new Response(body.length > 0 ? body.slice() : null, init);
}
// Direct mode's latest request: where a panic hands what it held (orphans.js
// hands it on). Here rather than there: see "One directly linked function per
// module" in edge/src/js.rs.
export function remember(env, ctx) {
  globalThis.__edgehose_handoff = { env, ctx };
}
