// body.js under Node's test runner: the capped reader, the inflater's cap,
// and with_body's one callback.

import assert from "node:assert/strict";
import { test } from "node:test";
import { gzipSync, inflateRawSync } from "node:zlib";
import { inflate_capped, read_capped, read_stream_capped, with_body } from "../body.js";

// A stream of `chunks` chunks of `size` bytes, made as they are read: how
// many were pulled and whether it was cancelled show where a reader stopped.
function counted(chunks, size) {
  const seen = { pulled: 0, cancelled: false };
  const stream = new ReadableStream({
    pull(controller) {
      if (seen.pulled === chunks) return controller.close();
      seen.pulled++;
      controller.enqueue(new Uint8Array(size).fill(seen.pulled));
    },
    cancel() {
      seen.cancelled = true;
    },
  });
  return [stream, seen];
}

test("the capped reader joins a stream up to its cap, exactly the cap included", async () => {
  const [stream, seen] = counted(4, 250);
  const bytes = await read_stream_capped(stream, 1000);
  assert.equal(bytes.length, 1000);
  assert.deepEqual([bytes[0], bytes[250], bytes[999]], [1, 2, 4]);
  assert.equal(seen.cancelled, false);
});

test("the capped reader stops and resolves null once a stream passes its cap", async () => {
  const [over] = counted(4, 250);
  assert.equal(await read_stream_capped(over, 999), null);
  // An endless stream: the reader stops at the chunk that passed the cap.
  const [endless, seen] = counted(Number.POSITIVE_INFINITY, 1024);
  assert.equal(await read_stream_capped(endless, 10 * 1024), null);
  assert.ok(seen.cancelled, "the stream is cancelled");
  assert.ok(seen.pulled <= 12, `${seen.pulled} chunks pulled for a cap of 10`);
});

test("a body with no length, or one past the cap, is read through its capped stream", async () => {
  const post = (body, headers = {}) =>
    new Request("https://e.example/", { method: "POST", body, headers, duplex: "half" });
  assert.deepEqual(await read_capped(post("12345", { "content-length": "5" }), 5), new TextEncoder().encode("12345"));
  assert.deepEqual(await read_capped(new Request("https://e.example/"), 5), new Uint8Array(0));
  const [endless, seen] = counted(Number.POSITIVE_INFINITY, 100);
  assert.equal(await read_capped(post(endless), 1000), null);
  assert.ok(seen.cancelled && seen.pulled <= 12, `${seen.pulled} chunks pulled`);
  // A length past the cap is not believed either way: the stream decides.
  assert.equal(await read_capped(post("123456", { "content-length": "6" }), 5), null);
  const [four] = counted(4, 1);
  assert.deepEqual([...(await read_capped(post(four, { "content-length": "99999" }), 5))], [1, 2, 3, 4]);
});

const text = (n) => new TextEncoder().encode("ride ".repeat(n));

test("a small gzip body inflates whole, exactly the cap included", async () => {
  const plain = text(1000);
  assert.deepEqual(await inflate_capped(gzipSync(plain), plain.length), plain);
  assert.equal(await inflate_capped(gzipSync(plain), plain.length - 1), null);
  assert.deepEqual(await inflate_capped(gzipSync(new Uint8Array(0)), 10), new Uint8Array(0));
});

// Runs `run` with `Stream` as the runtime's DecompressionStream.
async function inflating_with(Stream, run) {
  const native = globalThis.DecompressionStream;
  globalThis.DecompressionStream = Stream;
  try {
    return await run();
  } finally {
    globalThis.DecompressionStream = native;
  }
}

// The runtime's DecompressionStream, counting the compressed bytes written to it.
function counting(seen) {
  const Native = globalThis.DecompressionStream;
  return class {
    constructor(format) {
      const inner = new Native(format);
      const writer = inner.writable.getWriter();
      this.readable = inner.readable;
      this.writable = new WritableStream({
        write(chunk) {
          seen.written += chunk.byteLength;
          return writer.write(chunk);
        },
        close: () => writer.close(),
        abort: (reason) => writer.abort(reason),
      });
    }
  };
}

test("a gzip bomb stops a slice past the cap instead of inflating whole", async () => {
  const bomb = gzipSync(new Uint8Array(64 << 20));
  assert.ok(bomb.length < 100_000, `${bomb.length} bytes inflate to 64 MiB`);
  // A cap of 64 KiB: slices of 1 KiB (the least), each inflating to 1 MiB.
  const seen = { written: 0 };
  const inflated = await inflating_with(counting(seen), () => inflate_capped(bomb, 64 << 10));
  assert.equal(inflated, null);
  // The first slice passes the cap; Node inflates off the thread, so its
  // output may come a few slices late (workerd's comes with the write).
  assert.ok(seen.written <= 8 * 1024, `${seen.written} of ${bomb.length} bytes written`);
});

test("what is not gzip is refused with the runtime's reason", async () => {
  const why = await inflate_capped(new TextEncoder().encode("not gzip at all"), 1000);
  assert.equal(typeof why, "string");
  const whole = gzipSync(text(100));
  assert.equal(typeof (await inflate_capped(whole.subarray(0, whole.length / 2), 1000)), "string");
});

// workerd's DecompressionStream inflates one gzip member and refuses bytes
// after it ("Trailing bytes after end of compressed data", its message);
// Node's inflates every member, so here a stand-in does as workerd does.
class OneMember {
  constructor() {
    const chunks = [];
    // The whole body at its end: enough for a test of what comes after it.
    const whole = {
      transform: (chunk) => {
        chunks.push(chunk);
      },
      flush: (controller) => {
        const all = Buffer.concat(chunks);
        const out = inflateRawSync(all.subarray(10), { info: true });
        if (10 + out.engine.bytesWritten + 8 < all.length) {
          throw new TypeError("Trailing bytes after end of compressed data");
        }
        controller.enqueue(new Uint8Array(out.buffer));
      },
    };
    // A readable side with room, so each write is taken before a read.
    ({ readable: this.readable, writable: this.writable } = new TransformStream(whole, undefined, {
      highWaterMark: 1,
    }));
  }
}

test("two gzip members are refused, the reason naming the first", async () => {
  const one = gzipSync(text(10));
  assert.deepEqual(await inflating_with(OneMember, () => inflate_capped(one, 1000)), text(10));
  const two = Buffer.concat([one, gzipSync(text(10))]);
  const why = await inflating_with(OneMember, () => inflate_capped(two, 1000));
  assert.equal(typeof why, "string");
  assert.match(
    why,
    /^bytes follow the end of its first gzip member \(.*Trailing bytes.*\); the edge takes one member$/,
  );
});

// with_body's callback, as `then_with_body` in edge/src/js.rs reads it.
function settled(req, cap, inflate_cap, sniff) {
  const calls = [];
  const result = with_body(req, cap, inflate_cap, sniff, (...args) => {
    calls.push(args);
    return "then's answer";
  });
  return result.then((r) => {
    assert.equal(r, "then's answer");
    assert.equal(calls.length, 1, "then is called once");
    return calls[0];
  });
}

test("with_body calls back once: the body, null over the cap, or why it failed", async () => {
  const post = (body) => new Request("https://e.example/", { method: "POST", body, duplex: "half" });
  assert.deepEqual(await settled(post("hello"), 5, 0, false), [
    new TextEncoder().encode("hello"),
    undefined,
    undefined,
  ]);
  assert.deepEqual(await settled(post("hello!"), 5, 0, false), [null, undefined, undefined]);
  const failing = new ReadableStream({ pull: (c) => c.error(new Error("reset by peer")) });
  const [bytes, error, inflated] = await settled(post(failing), 5, 0, false);
  assert.equal(bytes, undefined);
  assert.equal(error.message, "reset by peer");
  assert.equal(inflated, undefined);
});

test("with_body inflates gzip, or with sniff only a body that starts as gzip", async () => {
  const post = (body) => new Request("https://e.example/", { method: "POST", body, duplex: "half" });
  const gz = gzipSync(text(20));
  assert.deepEqual(await settled(post(gz), 1000, 1000, false), [new Uint8Array(gz), undefined, text(20)]);
  assert.deepEqual(await settled(post(gz), 1000, 1000, true), [new Uint8Array(gz), undefined, text(20)]);
  assert.deepEqual(await settled(post(gz), 1000, 99, true), [new Uint8Array(gz), undefined, null]);
  const plain = text(2);
  assert.deepEqual(await settled(post(plain), 1000, 1000, true), [plain, undefined, undefined]);
  assert.equal(typeof (await settled(post(plain), 1000, 1000, false))[2], "string");
  assert.deepEqual(await settled(post(gz), 10, 1000, false), [null, undefined, undefined]);
});
