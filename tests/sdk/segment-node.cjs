// Drives @segment/analytics-node, unchanged, against an edgehose endpoint:
// one of each Segment call, then a flush. Prints one JSON line per call the
// SDK reports delivered ({"type", "messageId"}); exits 1 if any failed.
//
//   EDGEHOSE_HOST=http://127.0.0.1:8787 EDGEHOSE_WRITE_KEY=… EDGEHOSE_RUN=r1 node tests/sdk/segment-node.cjs
// (NODE_PATH must reach the bootstrap's npm packages; the tests set it.)
'use strict'
const { Analytics } = require('@segment/analytics-node')

const host = process.env.EDGEHOSE_HOST
const writeKey = process.env.EDGEHOSE_WRITE_KEY || 'no-key-configured'
const run = process.env.EDGEHOSE_RUN || 'run'
if (!host) {
  console.error('EDGEHOSE_HOST is required')
  process.exit(2)
}

// Settings as a user would set them: the host, and a small batch so one run
// posts several batches. Nothing else is changed.
const analytics = new Analytics({ writeKey, host, flushAt: 3, maxRetries: 3 })
const errors = []
analytics.on('error', (e) => errors.push(`${e.code}: ${e.reason}`))

const user = `user-${run}`
const calls = [
  ['track', { userId: user, event: 'Order Completed', properties: { revenue: 9.5, currency: 'EUR', run } }],
  ['identify', { userId: user, traits: { email: `${run}@shop.example`, plan: 'pro' } }],
  ['page', { anonymousId: `anon-${run}`, name: 'Home', category: 'Docs', properties: { path: '/' } }],
  ['screen', { userId: user, name: 'Settings', properties: { run } }],
  ['group', { userId: user, groupId: `acme-${run}`, traits: { employees: 40 } }],
  ['alias', { userId: user, previousId: `anon-${run}` }],
  ['track', { userId: user, event: 'Imported', timestamp: new Date('2024-05-01T12:30:00Z'), properties: { run } }],
]
for (const [method, params] of calls) {
  analytics[method](params, (err, ctx) => {
    if (err) errors.push(`${method}: ${err.reason || err}`)
    else console.log(JSON.stringify({ type: method, messageId: ctx.event.messageId }))
  })
}
analytics.closeAndFlush({ timeout: 30000 }).then(() => {
  if (errors.length > 0) {
    console.error(errors.join('\n'))
    process.exit(1)
  }
})
