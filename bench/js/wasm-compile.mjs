// Times compiling a wasm module in Node's V8 once, as a cold start compiles
// the Worker's: `new WebAssembly.Module(bytes)`. Run it in a fresh process
// for each timing (V8 caches a module it has compiled); V8 flags, e.g.
// --no-wasm-lazy-compilation, come before the script.
//
//   node [V8 flags] wasm-compile.mjs <file.wasm>
// Prints {"ms": …, "exports": …} on one line.
import { readFileSync } from "node:fs";

const [file] = process.argv.slice(2);
const bytes = readFileSync(file);
const t = process.hrtime.bigint();
const module = new WebAssembly.Module(bytes);
const ms = Number(process.hrtime.bigint() - t) / 1e6;
const exports = WebAssembly.Module.exports(module).length;
if (exports === 0) throw new Error(`${file} exports nothing`);
console.log(JSON.stringify({ ms, exports }));
