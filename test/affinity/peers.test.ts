// issue 10: peer lookups (state.peers) are bounded by their timeout and never made while the store answers
import t, { type Test } from 'tap'
import { waitFor } from '../helpers/wait.js'
import { join } from 'node:path'
import { request } from 'undici'
import pino from 'pino'
import { startDemoBackend } from '../../src/demo/index.js'
import { createPeers } from '../../src/state/peers.js'
import { startGatewayFromYaml, tempDir, type TestGateway } from '../helpers/gateway.js'
import { startBackend } from '../helpers/backend.js'
import { startRedis } from '../helpers/redis.js'
import { startRelay } from '../helpers/relay.js'
import { TOKENS_YAML, VIEWER } from '../helpers/admin.js'

async function gateway (t: Test, redis: string, peers: string[], timeoutMs: number): Promise<TestGateway> {
  const legacy = await startDemoBackend('legacy')
  const fresh = await startDemoBackend('new')
  t.teardown(() => legacy.close())
  t.teardown(() => fresh.close())
  return startGatewayFromYaml(`
backends:
  legacy: { url: "${legacy.url}", timeoutMs: 5000 }
  new: { url: "${fresh.url}", timeoutMs: 5000 }
rollouts:
  checkout:
    percent: 0
    cohortKey: [header:x-user-id]
    affinity: { learn: [json:$.orderId], lookup: [json:$.orderId], ttl: 1d }
routes:
  - { name: payments, match: { prefix: /api }, rollout: checkout }
${TOKENS_YAML}
state:
  store: redis
  file: "${join(tempDir(), 'p.json')}"
  redis: { url: "${redis}", prefix: "peers${process.pid}:" }
  peers: { urls: ${JSON.stringify(peers)}, token: "${VIEWER}", timeoutMs: ${timeoutMs} }
`, t)
}

async function pay (gw: TestGateway, orderId: string) {
  const started = performance.now()
  const r = await request(gw.url + '/api/payments', { method: 'POST', body: JSON.stringify({ orderId }), headers: { 'content-type': 'application/json', 'x-user-id': 'someone' } })
  await r.body.dump()
  return { status: r.statusCode, reason: r.headers['x-dualtrack-reason'], ms: performance.now() - started }
}

/** the promise's value, or a failure naming `what` if it has not settled by a generous deadline */
async function settles<T> (p: Promise<T>, what: string): Promise<T> {
  let out: { v: T } | undefined
  void p.then((v) => { out = { v } })
  return (await waitFor(() => out, { timeoutMs: 30_000, what })).v
}

t.test('a dead peer costs at most its timeout', async (t) => {
  const redis = await startRedis(t)
  // a peer that accepts connections and never answers, and one whose port refuses them
  const silent = await startRelay(t)
  const refused = await startRelay(t)
  await refused.close()
  const gw = await gateway(t, redis.url, [silent.url, refused.url], 300)
  await redis.stop()
  // the silent peer never answers: an answer at all shows the peer timeout ended the wait (the
  // test's deadline is generous; the time taken is printed, not asserted)
  const r = await settles(pay(gw, 'LG-never-seen'), 'an answer while the silent peer holds the lookup')
  t.same([r.status, r.reason], [404, 'percent'], 'nobody knows: the request falls through to the cohort rules')
  t.comment(`request with a silent peer (timeoutMs 300): ${Math.round(r.ms)} ms`)

  const client = createPeers({ urls: [silent.url], timeoutMs: 50 }, 0, pino({ level: 'silent' }))
  t.teardown(() => client.close())
  const started = performance.now()
  t.equal(await settles(client.ask('checkout', 'x'), 'the ask of a silent peer to end'), 'timeout', 'a silent peer: no owner, after the timeout')
  t.comment(`the ask ended after ${Math.round(performance.now() - started)} ms (timeoutMs 50)`)
  t.equal(client.asked.calls, 1)
})

t.test('peers are never asked while the store answers', async (t) => {
  const redis = await startRedis(t)
  const peer = await startBackend('peer', t)
  const gw = await gateway(t, redis.url, [peer.url], 50)
  const order = await request(gw.url + '/api/orders', { method: 'POST', body: '{}', headers: { 'content-type': 'application/json', 'x-user-id': 'someone' } })
  const { orderId } = await order.body.json() as { orderId: string }
  const known = await pay(gw, orderId)
  t.same([known.status, known.reason], [200, 'affinity'])
  for (let i = 0; i < 20; i++) t.same((await pay(gw, `LG-unknown-${i}`)).reason, 'percent')
  t.equal(peer.seen.length, 0, 'no request reached the peer')
  const metrics = await (await request(gw.adminUrl + '/metrics')).body.text()
  t.match(metrics, /dualtrack_affinity_total\{rollout="checkout",op="lookup",result="peer_miss"\} 0/)
  t.match(metrics, /dualtrack_affinity_total\{rollout="checkout",op="lookup",result="miss"\} 20/)
})
