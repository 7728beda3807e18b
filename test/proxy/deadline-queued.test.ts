// a request that waited for a free backend connection past its deadline was answered 504: it must
// never be sent afterwards (a payment charged after its client was told it failed)
import t from 'tap'
import { request } from 'undici'
import { startBackend } from '../helpers/backend.js'
import { startGatewayFromYaml } from '../helpers/gateway.js'
import { waitFor } from '../helpers/wait.js'

t.test('a POST answered 504 while queued for a connection never reaches the backend', async (t) => {
  const legacy = await startBackend('legacy', t)
  const fresh = await startBackend('new', t)
  let release: () => void = () => undefined
  const held = new Promise<void>((resolve) => { release = resolve })
  // the first request holds the one connection until the test lets it go
  legacy.handler = (req, res) => {
    const answer = () => { res.writeHead(200, { 'content-type': 'application/json' }); res.end('{}') }
    if (req.url === '/api/orders/slow') void held.then(answer)
    else answer()
  }
  const gw = await startGatewayFromYaml(`
backends:
  legacy: { url: "${legacy.url}", timeoutMs: 300, connections: 1 }
  new: { url: "${fresh.url}", connections: 1 }
rollouts:
  checkout: { percent: 0, cohortKey: [header:x-user-id] }
routes:
  - { name: orders, match: { prefix: /api/orders }, rollout: checkout }
`, t)
  // the slow GET takes the connection (it answers 504 too, but its request is already out)
  const slow = request(gw.url + '/api/orders/slow', { headers: { 'x-user-id': 'u1' } })
  await waitFor(() => legacy.seen.length > 0, { what: 'the slow GET to hold the connection' })
  const pay = await request(gw.url + '/api/orders/pay', { method: 'POST', headers: { 'x-user-id': 'u1', 'content-type': 'application/json' }, body: '{"amount":1}' })
  t.equal(pay.statusCode, 504, 'the queued POST is answered 504 at its deadline')
  await pay.body.dump()
  release()
  await (await slow).body.dump()
  // with one connection and no pipelining, a POST still queued would be written before this GET
  const after = await request(gw.url + '/api/orders/after', { headers: { 'x-user-id': 'u1' } })
  t.equal(after.statusCode, 200)
  await after.body.dump()
  t.same(legacy.seen.map((s) => `${s.method} ${s.url}`), ['GET /api/orders/slow', 'GET /api/orders/after'], 'the POST never left the gateway')
})
