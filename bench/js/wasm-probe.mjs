// Times the edge's Rust work built as wasm (bench/wasm-probe, through
// wasm-bindgen's nodejs target) in Node's V8: `fn(n)` runs the work n times,
// so one call per timing keeps the JS ↔ wasm crossing out of the figure.
//
//   node [V8 flags] wasm-probe.mjs <dir with probe.js> <accept|sign> <n per round> <rounds>
// Prints {"fn", "us_per_call": median over the rounds, "rounds": [...]} on one line.
const [dir, name, n = "20000", rounds = "7"] = process.argv.slice(2);
const probe = await import(`${dir}/probe.js`);
const work = probe[name];
if (typeof work !== "function") throw new Error(`${dir}/probe.js exports no ${name}`);
const per = Number(n);
const check = work(per); // warm-up: compile, tier up, reach a steady heap
const times = [];
for (let r = 0; r < Number(rounds); r++) {
  const t = process.hrtime.bigint();
  if (work(per) !== check) throw new Error(`${name} did different work in round ${r}`);
  times.push(Number(process.hrtime.bigint() - t) / 1e3 / per);
}
const sorted = [...times].sort((a, b) => a - b);
console.log(JSON.stringify({ fn: name, us_per_call: sorted[Math.floor(sorted.length / 2)], rounds: times }));
