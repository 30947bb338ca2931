// The runtime floor: a Worker that answers 200 and does nothing else.
export default {
  fetch() {
    return new Response('{"accepted":1}', { headers: { "content-type": "application/json" } });
  },
};
