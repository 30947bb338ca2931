// Drives posthog-node, unchanged, against an edgehose endpoint: two custom
// events (one with a timestamp of its own), an identify with person
// properties, an alias and a group, then a shutdown that flushes. Prints one
// JSON line per event the SDK reports sent ({"event", "uuid", "distinct_id"});
// exits 1 if the SDK reported any error.
//
//   EDGEHOSE_HOST=http://127.0.0.1:8787 EDGEHOSE_TOKEN=… EDGEHOSE_RUN=r1 node tests/sdk/posthog-node.cjs
// POSTHOG_CAPTURE_MODE=v1 (the SDK's own switch) sends to /i/v1/analytics/events.
// (NODE_PATH must reach the bootstrap's npm packages; the tests set it.)
'use strict'
const { PostHog } = require('posthog-node')

const host = process.env.EDGEHOSE_HOST
const token = process.env.EDGEHOSE_TOKEN
const run = process.env.EDGEHOSE_RUN || 'run'
if (!host || !token) {
  console.error('EDGEHOSE_HOST and EDGEHOSE_TOKEN are required')
  process.exit(2)
}

const failures = []
// Settings as a user would set them: the host and the project token, a small
// batch so one run posts several requests, one quick retry.
const posthog = new PostHog(token, { host, flushAt: 2, flushInterval: 0, fetchRetryCount: 1, fetchRetryDelay: 200 })
posthog.on('flush', (messages) => {
  for (const m of messages) console.log(JSON.stringify({ event: m.event, uuid: m.uuid, distinct_id: m.distinct_id }))
})
posthog.on('error', (e) => failures.push(String(e?.message || e)))

const user = `user-${run}`
posthog.capture({
  distinctId: user,
  event: 'order completed',
  properties: { total: 9.5, run, $current_url: `https://shop.example/${run}`, $session_id: `s-${run}` },
})
posthog.capture({
  distinctId: user,
  event: 'imported',
  timestamp: new Date('2024-05-01T12:30:00Z'),
  properties: { run },
})
posthog.identify({ distinctId: user, properties: { $set: { plan: 'pro' }, $set_once: { first_seen: run } } })
posthog.alias({ distinctId: user, alias: `alias-${run}` })
posthog.groupIdentify({ groupType: 'company', groupKey: `acme-${run}`, properties: { seats: 3 } })
posthog.shutdown().then(() => {
  if (failures.length > 0) {
    console.error(failures.join('\n'))
    process.exit(1)
  }
})
