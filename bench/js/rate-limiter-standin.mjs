// The edge Worker with a stand-in for Cloudflare's Rate Limiting binding,
// which a raw workerd does not have: the same `limit({ key })` call, a
// counter per key that never refuses, so `make bench-edge` measures what the
// guards cost the request path (the token's HMAC, the limit's plan and its
// calls, the bot rules), never a refusal. In production the binding's call
// goes to a counter Cloudflare keeps in the location.
import Worker from "./index.js";

const counts = new Map();
const RATE_LIMITER = {
  async limit({ key }) {
    counts.set(key, (counts.get(key) ?? 0) + 1);
    return { success: true };
  },
};

// worker-build's entry is a WorkerEntrypoint class: the subclass hands it the binding.
export default class extends Worker {
  constructor(ctx, env) {
    super(ctx, { ...env, RATE_LIMITER });
  }
}
