# The two entry points are `make dev` (the whole pipeline on this machine) and
# `make test` (everything CI checks). Both install what they need first
# (tools/bootstrap).

SHELL := /bin/bash
.DEFAULT_GOAL := test

EDGEHOSE_CACHE ?= $(if $(XDG_CACHE_HOME),$(XDG_CACHE_HOME),$(HOME)/.cache)/edgehose
export EDGEHOSE_CACHE
export CARGO_TERM_COLOR ?= never
# tools/env puts the bootstrap's tools (Node 22, wrangler, wasm-bindgen, …) on PATH.
RUN := source tools/env &&

CARGO := cargo
WASM := --target wasm32-unknown-unknown
# Crates that must build for Cloudflare Workers as well as natively.
WASM_CRATES := -p edgehose-shared -p edgehose-edge

.PHONY: dev test book bootstrap check fmt-check clippy js-check js-test wasm fuzz-build docs edge lambda unit bench-edge bench-wasm bench-transform bench-pipeline bench-latency bench-packing bench-cost bench-tracker bench fuzz soak

## dev: install tools, build, and run the whole pipeline locally: the edge
## Worker on 127.0.0.1:8787, firehose-local running the real transform, the
## API Gateway path on :8788. Ctrl-C stops everything. Flags: make dev ARGS="--help";
## make dev SINK=kinesis (or sqs) puts the edge in front of a stream (or queue) in moto.
dev: bootstrap
	$(RUN) tools/build-edge
	$(RUN) $(CARGO) build --release --locked -p edgehose-regional -p edgehose
	$(RUN) target/release/edgehose dev $(if $(SINK),--sink $(SINK)) $(ARGS)

## test: install tools, then run every check and every test
test: bootstrap check js-test edge lambda unit

## bootstrap: install the pinned toolchain and test tools (idempotent)
bootstrap:
	@tools/bootstrap

## check: formatting, lints (host and wasm32, and our JavaScript), the wasm32
## build, docs, the fuzz targets' build
check: fmt-check clippy js-check wasm docs fuzz-build

fmt-check:
	$(CARGO) fmt --all -- --check
	$(CARGO) fmt --all --manifest-path fuzz/Cargo.toml -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings
	$(CARGO) clippy $(WASM_CRATES) $(WASM) --locked -- -D warnings

## js-check: the JavaScript we own (the Worker's glue in edge/js, the tracker,
## the local and bench Workers, the test drivers) formatted and linted by Biome
## as biome.json says; any warning fails
js-check: bootstrap
	$(RUN) biome ci --colors=off --error-on-warnings .

## js-test: the Worker's JavaScript glue under Node's test runner (the Rust
## tests drive the same code through workerd)
js-test: bootstrap
	$(RUN) node --test 'edge/js/test/*.test.mjs'

wasm:
	$(CARGO) build $(WASM_CRATES) $(WASM) --locked

# The fuzz targets are a workspace of their own (make fuzz builds them with
# nightly and sanitizers); here they are linted and built with the pinned
# toolchain, --locked, into the one target/, so a stale fuzz/Cargo.lock or a
# target that no longer compiles fails make test, not make fuzz.
fuzz-build:
	$(CARGO) clippy --manifest-path fuzz/Cargo.toml --target-dir target --all-targets --locked -- -D warnings
	$(CARGO) build --manifest-path fuzz/Cargo.toml --target-dir target --locked

docs:
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --workspace --no-deps --locked

## edge: build the Worker (release, as deployed) and its panic-probe twin for the tests
edge:
	$(RUN) tools/build-edge
	$(RUN) EDGE_OUT_DIR=build-probe tools/build-edge --no-opt . --features panic-probe

## lambda: build both regional functions for Lambda (provided.al2023, arm64) with
## cargo-lambda (zig links), as `sam build` does, and check what came out
lambda:
	$(RUN) cd regional && cargo lambda build --release --arm64 --locked
	@for f in transform ingest-api; do \
	  b=target/lambda/$$f/bootstrap; \
	  [ "$$(od -An -tx1 -j18 -N2 $$b | tr -d ' ')" = "b700" ] || { echo "$$b is not an arm64 ELF"; exit 1; }; \
	  echo "$$b: arm64, $$(stat -c %s $$b) bytes"; \
	done

## unit: all Rust tests, including the end-to-end ones (emulator, Worker runtime)
unit:
	@mkdir -p target
	@# The end-to-end tests run the debug `edgehose` and `transform` binaries:
	@# cargo test builds a package's binaries only for its own integration tests.
	$(RUN) $(CARGO) build --workspace --bins --locked
	set -o pipefail; $(RUN) $(CARGO) test --workspace --locked 2>&1 | tee target/test.log
	@awk '/^test result:/ { p += $$4; f += $$6 } END { printf "tests: %d passed, %d failed\n", p, f; exit (p == 0) }' target/test.log

## book: the book in docs/ (mdBook) into target/book/; open target/book/index.html.
## make test builds it too, checks every link and runs its code blocks (tests/tests/book.rs)
book: bootstrap
	$(RUN) mdbook build docs
	@echo "the book: file://$(CURDIR)/target/book/index.html"

## bench-edge: the edge Worker against the runtime floors and a JS peer; prints
## numbers and rewrites the edge section of BENCHMARKS.md (not a pass/fail test)
bench-edge: bootstrap edge
	$(RUN) $(CARGO) run -q --release --locked -p edgehose-bench -- edge --write BENCHMARKS.md

## bench-wasm: the edge's own Rust work (accepting an event, signing a call)
## natively and as wasm in V8 at each opt-level and compiler tier; prints
## numbers and rewrites its BENCHMARKS.md section
bench-wasm: bootstrap
	$(RUN) $(CARGO) build -q --release --locked -p edgehose-bench
	$(RUN) target/release/edgehose-bench wasm --write BENCHMARKS.md $(ARGS)

## bench-transform: the transformation Lambda against a Python blueprint and a
## parse-only floor, plus its cold start; rewrites its BENCHMARKS.md section
bench-transform: bootstrap
	$(RUN) $(CARGO) build -q --release --locked -p edgehose-regional -p edgehose-bench
	$(RUN) target/release/edgehose-bench transform --write BENCHMARKS.md

## bench-pipeline: sustained events/s through the whole local pipeline (edge →
## firehose-local → transform → disk), every event id checked; prints numbers
## and rewrites its section of BENCHMARKS.md. ARGS="--seconds 30" etc.
bench-pipeline: bootstrap edge
	$(RUN) $(CARGO) build -q --release --locked -p edgehose-regional -p edgehose -p edgehose-bench
	$(RUN) target/release/edgehose-bench pipeline --write BENCHMARKS.md $(ARGS)

## bench-latency: the latency comparison on this machine: for each scenario
## (a client city and a region), both paths run locally behind delay proxies
## at that distance; prints numbers and rewrites its BENCHMARKS.md section.
## ARGS="--requests 100 --scenarios tokyo:us-east-1"
bench-latency: bootstrap edge
	$(RUN) $(CARGO) build -q --release --locked -p edgehose-regional -p edgehose -p edgehose-bench
	$(RUN) target/release/edgehose-bench latency --write BENCHMARKS.md $(ARGS)

## bench-packing: each sink's bill and calls per million ~170-byte events
## (Firehose records, Kinesis PUT payload units with and without aggregation,
## SQS requests) for direct mode and queue-mode packing; rewrites its section
bench-packing: bootstrap
	$(RUN) $(CARGO) build -q --release --locked -p edgehose-bench
	$(RUN) target/release/edgehose-bench packing --write BENCHMARKS.md

## bench-cost: the whole monthly bill of every path, line by line, from the
## dated price table, the shared packing code and measured CPU and Lambda
## time (which it measures and writes to cli/cost/src/measured.json, built into
## `edgehose cost`); draws bench/cost.svg and rewrites its BENCHMARKS.md section.
## After a price change: ARGS="--from cli/cost/src/measured.json" prices without measuring
bench-cost: bootstrap edge
	$(RUN) $(CARGO) build -q --release --locked -p edgehose-regional -p edgehose -p edgehose-bench
	$(RUN) target/release/edgehose-bench cost --write BENCHMARKS.md $(ARGS)

## bench-tracker: the browser tracker's size, built afresh, raw and gzipped
bench-tracker: bootstrap
	$(RUN) $(CARGO) build -q --release --locked -p edgehose-bench
	$(RUN) target/release/edgehose-bench tracker --write BENCHMARKS.md

## fuzz: every libFuzzer target in fuzz/ for FUZZ_SECS seconds (60) each, seeded
## from the test fixtures; prints executions and findings per target and rewrites
## the fuzz section of BENCHMARKS.md. Installs nightly and cargo-fuzz (not make test's)
FUZZ_SECS ?= 60
fuzz: bootstrap
	@tools/bootstrap --fuzz
	$(RUN) $(CARGO) build -q --release --locked -p edgehose-bench
	$(RUN) target/release/edgehose-bench fuzz --secs $(FUZZ_SECS) --write BENCHMARKS.md $(ARGS)

## soak: `edgehose dev` for SOAK_SECS seconds (600) at 64 connections with
## Firehose's faults and outages and Cloudflare's (queues refusing and out,
## R2 failing) on; prints events accepted, landed, lost, duplicated, waitUntil
## work cut, every process's memory, and rewrites BENCHMARKS.md's soak section
SOAK_SECS ?= 600
soak: bootstrap edge
	$(RUN) $(CARGO) build -q --release --locked -p edgehose-regional -p edgehose -p edgehose-bench
	$(RUN) target/release/edgehose-bench soak --secs $(SOAK_SECS) --write BENCHMARKS.md $(ARGS)

## bench: every benchmark above in turn on this machine (≈ 45 min: the fuzz targets
## 30 s each, the soak 3 min in each mode), then one table of the headline figures;
## rewrites BENCHMARKS.md (each section and the headline, one date and machine)
bench: bootstrap edge
	@tools/bootstrap --fuzz
	$(RUN) $(CARGO) build -q --release --locked -p edgehose-regional -p edgehose -p edgehose-bench
	$(RUN) target/release/edgehose-bench all --write BENCHMARKS.md
