// A request's body, read in one call and never held past its cap, and a gzip
// body inflated in the runtime under a cap of its own (edge/src/js.rs binds
// with_body; the others are exported for the tests).

// Reads a body, never holding more than `cap` + 1 bytes of it: one that
// announced no length (chunked, HTTP/2) is read through its stream and
// dropped as soon as it passes the cap. Resolves to the bytes, or null.
export async function read_capped(req, cap) {
  const length = req.headers.get("content-length");
  if (length !== null && /^[0-9]+$/.test(length) && Number(length) <= cap) {
    return new Uint8Array(await req.arrayBuffer());
  }
  // `body` only past this point: asking for it makes the runtime build a
  // stream object, which the common request (a length within the cap) does
  // without.
  const body = req.body;
  if (body === null) return new Uint8Array(0);
  return read_stream_capped(body, cap);
}
// Reads a stream whole, stopping (and resolving to null) once it passes `cap`.
export async function read_stream_capped(stream, cap) {
  const reader = stream.getReader();
  const chunks = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > cap) {
      reader.cancel().catch(() => {});
      return null;
    }
    chunks.push(value);
  }
  return joined(chunks, total);
}
// Inflates a gzip body with the runtime's native DecompressionStream, never
// holding much more than `cap` inflated bytes. Resolves to the bytes, null
// past the cap, or the reason as a string when it is not gzip the runtime can
// inflate (the runtime takes one gzip member: bytes after it are refused).
// The runtime inflates whatever is written to the stream at once, queueing
// all of it for the reader, and deflate turns one byte into at most 1032
// (RFC 1951: a 258-byte match in two bits). So the compressed bytes go in
// slices whose inflation is at most four caps, and each slice's output is
// read (and the cap checked) before the next is written: a 1 MiB bomb of
// zeros stops a slice past the cap instead of inflating to a gigabyte.
const DEFLATE_MOST_PER_BYTE = 1032;
const NOTHING_YET = Symbol("nothing yet");
const turn = () => new Promise((ok) => setTimeout(() => ok(NOTHING_YET), 0));
export async function inflate_capped(bytes, cap) {
  const slice = Math.max(1024, Math.floor((4 * cap) / DEFLATE_MOST_PER_BYTE));
  const stream = new DecompressionStream("gzip");
  const writer = stream.writable.getWriter();
  const reader = stream.readable.getReader();
  const chunks = [];
  let total = 0;
  let pending = null;
  let closing = null;
  // Reads what is ready (all of it when `to_end`): false past the cap.
  const drain = async (to_end) => {
    for (;;) {
      pending ??= reader.read();
      const r = to_end ? await pending : await Promise.race([pending, turn()]);
      if (r === NOTHING_YET) return true;
      pending = null;
      if (r.done) return true;
      total += r.value.byteLength;
      if (total > cap) return false;
      chunks.push(r.value);
    }
  };
  try {
    for (let at = 0; at < bytes.length; at += slice) {
      await writer.write(bytes.subarray(at, at + slice));
      if (!(await drain(false))) return over(reader, writer, pending);
    }
    closing = writer.close();
    if (!(await drain(true))) return over(reader, writer, pending, closing);
    await closing;
    return joined(chunks, total);
  } catch (e) {
    over(reader, writer, pending, closing);
    const why = String(e?.message ?? e);
    return /trailing bytes/i.test(why)
      ? `bytes follow the end of its first gzip member (${why}); the edge takes one member`
      : why;
  }
}
// Stops an inflation: null, as past the cap. What it leaves pending may still
// reject (a truncated stream rejects `closing`): nothing is left unhandled.
function over(reader, writer, pending, closing) {
  pending?.catch(() => {});
  closing?.catch(() => {});
  reader.cancel().catch(() => {});
  writer.abort().catch(() => {});
  return null;
}
function joined(chunks, total) {
  const bytes = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    bytes.set(c, at);
    at += c.byteLength;
  }
  return bytes;
}
export function with_body(req, cap, inflate_cap, sniff, then) {
  // `then` is called once, with the body (null: over the cap) or with the
  // reason it could not be read, whenever the read settles: a one-shot Rust
  // closure that is never called would leak. (A read the runtime abandons
  // without settling, when it cancels the request, leaves it uncalled, as
  // it left a JsFuture before.) With an `inflate_cap` the body is gzip and
  // its inflation comes third (see inflate_capped); with `sniff` only if its
  // first bytes are gzip's (1f 8b 08: PostHog's gzip-js names it nowhere else).
  // read_capped is async: it never throws, its promise rejects.
  const read = read_capped(req, cap);
  const failed = (error) => then(undefined, error, undefined);
  // The common request, not gzip: one step from the bytes to Rust.
  if (!(inflate_cap > 0)) return read.then((bytes) => then(bytes, undefined, undefined), failed);
  return read
    .then((bytes) =>
      bytes === null
        ? [null, undefined]
        : sniff && !(bytes[0] === 0x1f && bytes[1] === 0x8b && bytes[2] === 0x08)
          ? [bytes, undefined]
          : inflate_capped(bytes, inflate_cap).then((inflated) => [bytes, inflated]),
    )
    .then(([bytes, inflated]) => then(bytes, undefined, inflated), failed);
}
