// Prints the V8 heap of one Worker, read through its DevTools inspector
// (`edgehose dev --inspector-port N` opens it) right after a full garbage
// collection, so it is what the Worker keeps alive, as one JSON line:
// {"usedSize": …, "totalSize": …, "embedderHeapUsedSize": …, "backingStorageSize": …}.
//
//   node heap.mjs ws://127.0.0.1:N/edgehose
//
// This is the Worker's JavaScript side (its wasm-bindgen glue, the request
// and response objects the runtime keeps for it); its linear memory is what
// /healthz reports as wasm_memory_bytes.
const [url] = process.argv.slice(2);
// The inspector proxy refuses an upgrade without an Origin it trusts.
const ws = new WebSocket(url, { headers: { origin: "http://localhost" } });
const timer = setTimeout(() => {
  console.error(`no answer from ${url} within 10 s`);
  process.exit(1);
}, 10_000);
ws.onerror = (e) => {
  console.error(`${url}: ${e.message ?? "connection failed"}`);
  process.exit(1);
};
ws.onopen = () => ws.send(JSON.stringify({ id: 1, method: "HeapProfiler.collectGarbage" }));
ws.onmessage = (m) => {
  const msg = JSON.parse(String(m.data));
  if (msg.id === 1) {
    ws.send(JSON.stringify({ id: 2, method: "Runtime.getHeapUsage" }));
    return;
  }
  if (msg.id !== 2) return;
  clearTimeout(timer);
  if (msg.error) {
    console.error(`${url}: ${JSON.stringify(msg.error)}`);
    process.exit(1);
  }
  console.log(JSON.stringify(msg.result));
  ws.close();
  process.exit(0);
};
