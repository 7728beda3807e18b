// issue 10, as deployed: the replicas find each other by a DNS name (a headless Service in
// deploy/k8s; here `localhost`, which resolves to 127.0.0.1 without a DNS server), read at load and
// again in the background, never per ask; and an owner keeps when it was recorded wherever it is
// read from: the store (real redis-server), this replica's memory, or a peer
import t, { type Test } from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { request } from 'undici'
import { Redis } from 'ioredis'
import pino from 'pino'
import { startDemoBackend } from '../../src/demo/index.js'
import { createPeers } from '../../src/state/peers.js'
import { startGatewayFromYaml, tempDir, type TestGateway } from '../helpers/gateway.js'
import { startRedis } from '../helpers/redis.js'
import { call, TOKENS_YAML, VIEWER } from '../helpers/admin.js'
import { waitFor } from '../helpers/wait.js'

const PREFIX = `pdns${process.pid}:`

async function systems (t: Test) {
  const legacy = await startDemoBackend('legacy')
  const fresh = await startDemoBackend('new')
  t.teardown(() => legacy.close())
  t.teardown(() => fresh.close())
  return { legacy: legacy.url, fresh: fresh.url }
}

// the rollout is shared through Redis: one config for every replica. Orders of `buyer` go to new;
// anything else follows percent 0 (legacy) unless affinity says otherwise
function yaml (s: { legacy: string, fresh: string }, redis: string, peers = '') {
  return `
backends:
  legacy: { url: "${s.legacy}", timeoutMs: 5000 }
  new: { url: "${s.fresh}", timeoutMs: 5000 }
rollouts:
  checkout:
    percent: 0
    cohortKey: [header:x-user-id]
    force: { new: [buyer] }
    affinity: { learn: [json:$.orderId], lookup: [json:$.orderId], ttl: 1d }
routes:
  - { name: api, match: { prefix: /api }, rollout: checkout }
${TOKENS_YAML}
state:
  store: redis
  file: "${join(tempDir(), 's.json')}"
  redis: { url: "${redis}", prefix: "${PREFIX}" }
${peers}
`
}

const adminPort = (gw: TestGateway) => Number(new URL(gw.adminUrl).port)

async function post (gw: TestGateway, path: string, body: unknown, user = 'someone') {
  const r = await request(gw.url + path, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json', 'x-user-id': user } })
  return { status: r.statusCode, backend: r.headers['x-dualtrack-backend'], reason: r.headers['x-dualtrack-reason'], json: await r.body.json() as Record<string, unknown> }
}

t.test('dns: the name\'s addresses are read at load and in the background, never per ask', async (t) => {
  const redis = await startRedis(t)
  const s = await systems(t)
  const peer = await startGatewayFromYaml(yaml(s, redis.url), t)
  const order = await post(peer, '/api/orders', {}, 'buyer')
  t.equal(order.backend, 'new')
  const id = String(order.json.orderId)
  const port = adminPort(peer)
  const log = pino({ level: 'silent' })

  // a refresh interval longer than the test: whatever the asks, the name is read once
  const once = createPeers({ dns: `localhost:${port}`, token: VIEWER, timeoutMs: 10_000 }, 0, log, { refreshMs: 600_000 })
  t.teardown(() => once.close())
  await waitFor(() => once.targets().length > 0, { timeoutMs: 30_000, what: 'localhost to resolve' })
  t.ok(once.targets().includes(`http://127.0.0.1:${port}`), `localhost's addresses, on the port given: ${once.targets().join(', ')}`)
  for (let i = 0; i < 10; i++) {
    const got = await once.ask('checkout', id)
    t.equal(typeof got === 'object' ? got.owner : got, 'new', 'the real gateway behind the name answers')
  }
  t.equal(once.asked.resolutions, 1, 'ten asks, one DNS read (at load)')

  // with a short interval it is read again in the background
  const often = createPeers({ dns: `localhost:${port}`, token: VIEWER, timeoutMs: 10_000 }, 0, log, { refreshMs: 50 })
  t.teardown(() => often.close())
  await waitFor(() => often.asked.resolutions >= 3, { timeoutMs: 30_000, what: 'three DNS reads with no ask' })
  t.equal(often.asked.calls, 0, 'no peer was asked meanwhile')

  // tokenFile: read again with the addresses, so a rotated Secret reaches the asks with no restart
  const dir = tempDir('dualtrack-peer-token-')
  const file = join(dir, 'viewer')
  writeFileSync(file, 'a-token-the-peer-does-not-know-0123456789\n')
  const rotating = createPeers({ dns: `localhost:${port}`, tokenFile: file, timeoutMs: 10_000 }, 0, log, { refreshMs: 50 })
  t.teardown(() => rotating.close())
  await waitFor(() => rotating.targets().length > 0, { timeoutMs: 30_000, what: 'localhost to resolve' })
  t.equal(await rotating.ask('checkout', id), 'none', 'a token the peer refuses: nobody knows (401 is not an owner)')
  writeFileSync(file, `${VIEWER}\n`)
  await waitFor(async () => {
    const got = await rotating.ask('checkout', id)
    return typeof got === 'object' && got.owner === 'new'
  }, { timeoutMs: 30_000, what: 'the new token to be read and accepted' })
  t.pass('the rotated token is used')

  // a name that does not resolve: no peers, an ask ends at once (clear: nobody holds anything), not at the timeout
  const nowhere = createPeers({ dns: 'no-such-peer.invalid:9090', timeoutMs: 600_000 }, 0, log, { refreshMs: 600_000 })
  t.teardown(() => nowhere.close())
  t.equal(await nowhere.ask('checkout', id), 'clear')
  t.same(nowhere.targets(), [])
})

t.test('an owner keeps when it was recorded: read from Redis, then from memory with Redis down, then by a peer found by DNS', async (t) => {
  const redis = await startRedis(t)
  const s = await systems(t)
  // x creates the orders; y pays for them (so it reads their owners from Redis); z has never seen
  // them and finds y through localhost:<y's admin port>
  const x = await startGatewayFromYaml(yaml(s, redis.url), t)
  const y = await startGatewayFromYaml(yaml(s, redis.url), t)
  const z = await startGatewayFromYaml(yaml(s, redis.url, `  peers: { dns: "localhost:${adminPort(y)}", token: "${VIEWER}", timeoutMs: 5000 }`), t)
  const order = await post(x, '/api/orders', {}, 'buyer')
  const id = String(order.json.orderId)
  t.equal(order.backend, 'new')

  // what Redis holds: the owner and when it was recorded
  const raw = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 })
  t.teardown(() => raw.disconnect())
  const stored = await raw.get(`${PREFIX}aff:checkout:${id}`)
  t.match(stored, /^new \d{13}$/, 'the value holds the owner and the time')
  const learnedAt = new Date(Number(stored?.split(' ')[1])).toISOString()
  t.same((await call(x.adminUrl, 'GET', `/admin/affinity/${id}`, VIEWER)).body, { orderId: id, owner: 'new', learnedAt }, 'x learned it then')

  // a value written before the ledger (the owner alone) is still read, with no time
  await raw.set(`${PREFIX}aff:checkout:OLD-1`, 'new', 'PX', 60_000)

  const paid = await post(y, '/api/payments', { orderId: id })
  t.same([paid.status, paid.backend, paid.reason], [200, 'new', 'affinity'], 'y found the owner in Redis')
  const old = await post(y, '/api/payments', { orderId: 'OLD-1' })
  t.same([old.backend, old.reason], ['new', 'affinity'], 'an old value still routes')

  await redis.stop()
  // the store is down: y answers from memory alone, with the time Redis gave it
  t.same((await call(y.adminUrl, 'GET', `/admin/affinity/${id}`, VIEWER)).body, { orderId: id, owner: 'new', learnedAt }, 'y\'s memory keeps the time read from Redis')
  t.same((await call(y.adminUrl, 'GET', '/admin/affinity/OLD-1', VIEWER)).body, { orderId: 'OLD-1', owner: 'new', learnedAt: null }, 'an old value has none to keep')

  // z's lookup fails on the store; it asks the peers the name resolves to, and y knows
  const viaPeer = await post(z, '/api/payments', { orderId: id })
  t.same([viaPeer.status, viaPeer.backend, viaPeer.reason], [200, 'new', 'affinity'], 'z routes the payment to the order\'s system')
  const metrics = await (await request(z.adminUrl + '/metrics')).body.text()
  t.match(metrics, /dualtrack_affinity_total\{rollout="checkout",op="lookup",result="peer_hit"\} 1\b/)
  t.same((await call(z.adminUrl, 'GET', `/admin/affinity/${id}`, VIEWER)).body, { orderId: id, owner: 'new', learnedAt }, 'and keeps the time the peer gave')

  // an order created while the store is down: queued on x with its time, which the flush writes
  const during = await post(x, '/api/orders', {}, 'buyer')
  const did = String(during.json.orderId)
  const queuedAt = (await call(x.adminUrl, 'GET', `/admin/affinity/${did}`, VIEWER)).body.learnedAt as string
  t.match(queuedAt, /^\d{4}-\d\d-\d\dT/, 'x knows when, with the store down')
  await redis.start()
  await waitFor(async () => (await raw.get(`${PREFIX}aff:checkout:${did}`).catch(() => null)) !== null, { timeoutMs: 30_000, what: 'the queued owner to reach Redis' })
  t.equal(await raw.get(`${PREFIX}aff:checkout:${did}`), `new ${Date.parse(queuedAt)}`, 'written late, with the time it was recorded')
})
