// a request whose deadline passes while it still waits for a pool connection has been answered
// 504: it must never be sent to the backend afterwards (for a write, the client was told it
// failed; it may retry, and the backend would see it twice)
import t from 'tap'
import type { ServerResponse } from 'node:http'
import { request } from 'undici'
import { startBackend } from '../helpers/backend.js'
import { startGatewayFromYaml } from '../helpers/gateway.js'
import { waitFor } from '../helpers/wait.js'

// found by the stability runs of issue 12 (test/admin/api.test.ts crashed once with
// ERR_HTTP_HEADERS_SENT from Exchange.onResponseError). src/proxy/forward.ts: onDeadline with no
// controller yet answers 504 and finishes, but the dispatch stays queued in the undici Pool, and
// onRequestStart only aborts when #aborted (a client abort), not when #done: the request is sent
// later and its answer reaches a response that has ended
t.test('a request answered 504 while queued is never sent afterwards', { todo: 'src/proxy/forward.ts: onRequestStart must abort once the exchange is done (#done)' }, async (t) => {
  const legacy = await startBackend('legacy', t)
  const fresh = await startBackend('new', t)
  const held: ServerResponse[] = []
  // the first request holds the only connection until the test lets go
  legacy.handler = (req, res) => { if (held.length === 0 && req.method === 'GET') held.push(res); else res.end('ok') }
  t.teardown(() => { for (const res of held) res.destroy() })
  const gw = await startGatewayFromYaml(`
backends:
  legacy: { url: "${legacy.url}", timeoutMs: 1000, connectTimeoutMs: 500, connections: 1 }
  new: { url: "${fresh.url}", timeoutMs: 1000, connectTimeoutMs: 500, connections: 1 }
rollouts:
  checkout: { percent: 0, cohortKey: [header:x-user-id] }
routes:
  - { name: orders, match: { prefix: /api/orders }, rollout: checkout }
default: legacy
`, t)
  const first = request(gw.url + '/api/orders/1')
  await waitFor(() => held.length === 1, { what: 'the first request to hold the only connection' })
  // the payment queues behind it and passes its deadline there
  const pay = await request(gw.url + '/api/orders', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"orderId":"o-1"}' })
  t.equal(pay.statusCode, 504)
  t.same(await pay.body.json(), { error: 'DUALTRACK_ERR_UPSTREAM_TIMEOUT', message: 'the legacy system did not answer in time', backend: 'legacy' })
  t.equal((await first).statusCode, 504)
  // a GET sent now queues behind anything still waiting: once it is answered, the POST would have gone
  const after = await request(gw.url + '/api/orders/2')
  await after.body.dump()
  t.equal(after.statusCode, 200)
  t.same(legacy.seen.map((s) => `${s.method} ${s.url}`), ['GET /api/orders/1', 'GET /api/orders/2'], 'the timed-out payment never reached the backend')
})
