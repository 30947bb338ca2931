// Samples a workerd isolate's thread with V8's CPU profiler over its
// inspector, while the benchmark sends requests, and sums the samples by
// what ran: the Worker's own JavaScript (its modules), its wasm, the
// runtime's built-ins and V8's own states (program, garbage collector, idle).
//
//   node cpu-profile.mjs ws://127.0.0.1:<inspector port>/main <sampling µs>
// Prints "started" once sampling runs, stops when stdin closes, then prints
// {"interval_us", "samples": {category: n}, "top": [[frame, n], …]} on one line.
const [url, interval = "50"] = process.argv.slice(2);
const ws = new WebSocket(url);
let id = 0;
const pending = new Map();
const call = (method, params = {}) =>
  new Promise((ok, no) => {
    const i = ++id;
    pending.set(i, { ok, no });
    ws.send(JSON.stringify({ id: i, method, params }));
  });
ws.onmessage = (m) => {
  const msg = JSON.parse(String(m.data));
  const p = pending.get(msg.id);
  if (!p) return;
  pending.delete(msg.id);
  if (msg.error) p.no(new Error(JSON.stringify(msg.error)));
  else p.ok(msg.result);
};
ws.onerror = (e) => {
  console.error(`inspector ${url}: ${e.message ?? e}`);
  process.exit(1);
};
function category(frame) {
  const { functionName: f, url: u } = frame;
  if (f === "(idle)" || f === "(program)" || f === "(garbage collector)" || f === "(root)") return f;
  const wasm =
    /^wasm-function\[|^js-to-wasm|^wasm-to-js/.test(f) || u.startsWith("wasm://") || /\.wasm|wasm-[0-9a-f]{8}/.test(u);
  if (wasm) return "wasm";
  if (u !== "") return "Worker JavaScript";
  return "runtime built-ins";
}
ws.onopen = async () => {
  await call("Profiler.enable");
  await call("Profiler.setSamplingInterval", { interval: Number(interval) });
  await call("Profiler.start");
  console.log("started");
  process.stdin.resume();
  await new Promise((r) => process.stdin.on("end", r));
  const { profile } = await call("Profiler.stop");
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const samples = {};
  const frames = new Map();
  for (const s of profile.samples) {
    const frame = nodes.get(s).callFrame;
    const c = category(frame);
    samples[c] = (samples[c] ?? 0) + 1;
    const name = `${frame.functionName || "(anonymous)"} ${frame.url.split("/").pop()}`.trim();
    frames.set(name, (frames.get(name) ?? 0) + 1);
  }
  const top = [...frames].sort((a, b) => b[1] - a[1]).slice(0, 12);
  console.log(JSON.stringify({ interval_us: Number(interval), samples, top }));
  process.exit(0);
};
