// Drives @snowplow/node-tracker, unchanged, against an edgehose endpoint: a
// page view, a structured event, a self-describing event with an entity and
// one with a true timestamp, for a user, then a flush. Prints one JSON line
// per event the tracker reports delivered ({"e", "eid"}); exits 1 if any
// request failed.
//
//   EDGEHOSE_HOST=http://127.0.0.1:8787 EDGEHOSE_WRITE_KEY=… EDGEHOSE_RUN=r1 node tests/sdk/snowplow-node.cjs
// (NODE_PATH must reach the bootstrap's npm packages; the tests set it.)
'use strict'
const { newTracker, buildPageView, buildStructEvent, buildSelfDescribingEvent } = require('@snowplow/node-tracker')

const endpoint = process.env.EDGEHOSE_HOST
const writeKey = process.env.EDGEHOSE_WRITE_KEY
const run = process.env.EDGEHOSE_RUN || 'run'
if (!endpoint) {
  console.error('EDGEHOSE_HOST is required')
  process.exit(2)
}

const failures = []
// Settings as a user would set them: the collector's address, the write key
// as a custom header, a small buffer so one run posts several batches.
const tracker = newTracker(
  { namespace: `edgehose-${run}`, appId: 'shop' },
  {
    endpoint,
    bufferSize: 2,
    customHeaders: writeKey ? { 'x-edgehose-key': writeKey } : {},
    onRequestSuccess: (batch) => {
      for (const e of batch) console.log(JSON.stringify({ e: e.e, eid: e.eid }))
    },
    onRequestFailure: (failure, response) => {
      failures.push(`${response ? response.status : 'no answer'}: ${failure.message || ''}`)
    },
  },
)
tracker.setUserId(`user-${run}`)
tracker.track(
  buildPageView({ pageUrl: `https://shop.example/${run}`, pageTitle: 'Home', referrer: 'https://search.example/' }),
)
tracker.track(buildStructEvent({ category: 'shop', action: 'add-to-basket', label: run, value: 2 }))
tracker.track(
  buildSelfDescribingEvent({ event: { schema: 'iglu:com.acme/checkout/jsonschema/1-0-0', data: { total: 9.5, run } } }),
  [{ schema: 'iglu:com.acme/basket/jsonschema/1-0-0', data: { items: 3 } }],
)
tracker.track(
  buildSelfDescribingEvent({ event: { schema: 'iglu:com.acme/imported/jsonschema/1-0-0', data: { run } } }),
  undefined,
  { type: 'ttm', value: Date.parse('2024-05-01T12:30:00Z') },
)
tracker.flush().then(() => {
  if (failures.length > 0) {
    console.error(failures.join('\n'))
    process.exit(1)
  }
})
