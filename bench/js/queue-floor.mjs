// The Miniflare Queues floor: a Worker that reads the body, sends it to a
// queue as one message and answers 200; its consumer acks every message.
// What the local queue emulation costs per request, whatever the Worker does.
export default {
  async fetch(request, env) {
    await env.EVENTS_QUEUE.send(await request.text(), { contentType: "text" });
    return new Response('{"accepted":1}', { headers: { "content-type": "application/json" } });
  },
  async queue(batch) {
    for (const m of batch.messages) m.ack();
  },
};
