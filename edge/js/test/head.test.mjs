// head.js under Node's test runner: the framing lists cross from Rust in,
// the request head as lines (or JSON), and the answer.

import assert from "node:assert/strict";
import { test } from "node:test";
import { pairs, request_head, respond, strings } from "../head.js";

// Frames strings as `Framed::of` in edge/src/js.rs does: UTF-8 end to end,
// each end counted in UTF-16 units (a JavaScript string's length).
function framed(list) {
  const ends = [];
  let units = 0;
  for (const s of list) {
    units += s.length;
    ends.push(units);
  }
  return [new TextEncoder().encode(list.join("")), new Uint32Array(ends)];
}

test("framed strings end where their UTF-16 ends say, whatever they hold", () => {
  const list = ["a\u0001b", "", "\u0000é", "🙂x", "=\n"];
  const [bytes, ends] = framed(list);
  // The same ends as the Rust test of Framed: "é" is one unit, "🙂" two.
  assert.deepEqual([...ends], [3, 3, 5, 8, 10]);
  assert.deepEqual(strings(bytes, ends), list);
  assert.deepEqual(strings(new Uint8Array(0), new Uint32Array(0)), []);
});

test("a U+FEFF the strings begin with is theirs, not a byte-order mark", () => {
  const list = ["\uFEFFkey", "value", "\uFEFF"];
  assert.deepEqual(strings(...framed(list)), list);
});

test("pairs are strings two by two; an odd last one is dropped", () => {
  assert.deepEqual(pairs(...framed(["content-type", "text/plain", "x-é", "🙂"])), [
    ["content-type", "text/plain"],
    ["x-é", "🙂"],
  ]);
  assert.deepEqual(pairs(...framed(["only"])), []);
});

// The 20 fields request_head sends, in Head's order (edge/src/js.rs).
const FIELDS = 20;

test("the head goes as lines: '=' and the value when present, nothing when absent", () => {
  const req = new Request("https://e.example/v1/events?k=1", {
    method: "POST",
    headers: {
      origin: "",
      "content-length": "12",
      "content-type": "text/plain",
      "user-agent": "curl/8",
      cookie: "a=b",
    },
    body: "{}",
  });
  const lines = request_head(req).split("\n");
  assert.equal(lines.length, FIELDS);
  assert.deepEqual(lines.slice(0, 10), [
    "=POST",
    "=https://e.example/v1/events?k=1",
    "=",
    "",
    "",
    "=12",
    "=text/plain",
    "",
    "",
    "=curl/8",
  ]);
  // No request.cf (not in workerd's hands): its seven fields are absent.
  assert.deepEqual(lines.slice(10, 17), ["", "", "", "", "", "", ""]);
  assert.deepEqual(lines.slice(17), ["=a=b", "", ""]);
});

test("the head carries request.cf's fields, numbers as text", () => {
  const req = {
    method: "GET",
    url: "https://e.example/healthz",
    headers: new Headers({ "sp-anonymous": "*", "posthog-sdk-info": "posthog-node/5" }),
    cf: {
      country: "DE",
      colo: "FRA",
      asn: 3320,
      botManagement: { score: 12, verifiedBot: true },
      verifiedBotCategory: "Search Engine Crawler",
      clientTrustScore: 99,
    },
  };
  const lines = request_head(req).split("\n");
  assert.equal(lines.length, FIELDS);
  assert.deepEqual(lines.slice(10), [
    "=DE",
    "=FRA",
    "=3320",
    "=12",
    "=1",
    "=Search Engine Crawler",
    "=99",
    "",
    "=*",
    "=posthog-node/5",
  ]);
  // A bot not verified, and no botManagement at all, are absent.
  req.cf.botManagement = { score: 3, verifiedBot: false };
  assert.equal(request_head(req).split("\n")[14], "");
  req.cf.botManagement = undefined;
  assert.deepEqual(request_head(req).split("\n").slice(13, 15), ["", ""]);
});

test("a value holding a line break sends the head as JSON, every value whole", () => {
  // Fetch's Headers refuse a line break, so a stand-in holds one.
  const values = { "user-agent": "two\nlines", "content-length": "7" };
  const req = {
    method: "POST",
    url: "https://e.example/i",
    headers: { get: (name) => values[name] ?? null },
    cf: { asn: 64500 },
  };
  const head = request_head(req);
  assert.ok(head.startsWith("["), head);
  const fields = JSON.parse(head);
  assert.equal(fields.length, FIELDS);
  assert.equal(fields[0], "POST");
  assert.equal(fields[5], "7");
  assert.equal(fields[9], "two\nlines");
  assert.equal(fields[12], "64500");
  assert.equal(fields[2], null);
  assert.equal(fields[10], null);
});

test("the answer: status, framed headers, its own copy of the body", async () => {
  const body = new TextEncoder().encode('{"accepted":1}');
  const res = respond(202, body, ...framed(["content-type", "application/json", "retry-after", "1"]));
  body[0] = 0;
  assert.equal(res.status, 202);
  assert.equal(res.headers.get("content-type"), "application/json");
  assert.equal(res.headers.get("retry-after"), "1");
  assert.equal(await res.text(), '{"accepted":1}');
  const empty = respond(204, new Uint8Array(0), ...framed([]));
  assert.equal(empty.body, null);
});
