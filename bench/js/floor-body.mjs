// The floor for any Worker that must read what it is sent: the body is read
// in full, then the Worker answers 200 and does nothing else. edgehose
// cannot answer `{"accepted":N}` without reading the body, so no ingest
// Worker can be faster than this one in the same runtime.
export default {
  async fetch(request) {
    await request.arrayBuffer();
    return new Response('{"accepted":1}', { headers: { "content-type": "application/json" } });
  },
};
