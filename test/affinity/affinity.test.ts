import t, { type Test } from 'tap'
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'
import { request } from 'undici'
import { startDemoBackend, type DemoBackend } from '../../src/demo/index.js'
import { startGatewayFromYaml, tempDir, captureLogger } from '../helpers/gateway.js'
import { startRedis } from '../helpers/redis.js'
import { call, OPERATOR, VIEWER, TOKENS_YAML } from '../helpers/admin.js'
import { parseConfig } from '../../src/config/index.js'
import { buildApp } from '../../src/app.js'
import { FileStore } from '../../src/state/file-store.js'
import { waitFor } from '../helpers/wait.js'

function yaml (legacy: DemoBackend, fresh: DemoBackend, state: string, extra = '') {
  return `
backends:
  legacy: { url: "${legacy.url}", timeoutMs: 2000 }
  new: { url: "${fresh.url}", timeoutMs: 2000 }
rollouts:
  checkout:
    percent: 0
    salt: aff
    cohortKey: [header:x-user-id]
    force: { new: [buyer-on-new] }
    affinity:
      learn: [json:$.orderId, header:location]
      lookup: [path:/api/orders/:orderId, json:$.orderId, form:out_trade_no, query:orderId]
      ttl: ${extra.includes('ttl') ? '2s' : '1d'}
      maxEntries: 1000
routes:
  - { name: orders, match: { prefix: /api/orders }, rollout: checkout }
  - { name: payments, match: { prefix: /api/payments }, rollout: checkout }
${TOKENS_YAML}
${state}
`
}

async function systems (t: Test) {
  const legacy = await startDemoBackend('legacy')
  const fresh = await startDemoBackend('new')
  t.teardown(() => legacy.close())
  t.teardown(() => fresh.close())
  return { legacy, fresh }
}

async function post (url: string, path: string, body: string, type: string, headers: Record<string, string> = {}) {
  const r = await request(url + path, { method: 'POST', body, headers: { 'content-type': type, ...headers } })
  const text = await r.body.text()
  return { status: r.statusCode, backend: r.headers['x-dualtrack-backend'], reason: r.headers['x-dualtrack-reason'], json: JSON.parse(text) as Record<string, unknown> }
}

async function createOrder (url: string, user: string) {
  const r = await post(url, '/api/orders', '{"items":[{"sku":"tea","qty":1,"price":9.5}]}', 'application/json', { 'x-user-id': user })
  return { ...r, orderId: String(r.json.orderId) }
}

async function followUps (url: string, orderId: string) {
  // the payment (JSON, no user id) and the provider's callback (form, no user id)
  const pay = await post(url, '/api/payments', JSON.stringify({ orderId, amount: 9.5 }), 'application/json')
  const notify = await post(url, '/api/payments/notify', `out_trade_no=${encodeURIComponent(orderId)}&trade_status=SUCCESS`, 'application/x-www-form-urlencoded')
  const get = await request(`${url}/api/orders/${orderId}`)
  await get.body.dump()
  return [
    { backend: pay.backend, reason: pay.reason, status: pay.status },
    { backend: notify.backend, reason: notify.reason, status: notify.status },
    { backend: get.headers['x-dualtrack-backend'], reason: get.headers['x-dualtrack-reason'], status: get.statusCode }
  ]
}

t.test('payments and callbacks follow the order, whatever the percent and the rollback mode', async (t) => {
  const { legacy, fresh } = await systems(t)
  const gw = await startGatewayFromYaml(yaml(legacy, fresh, ''), t)
  const onNew = await createOrder(gw.url, 'buyer-on-new')
  t.same([onNew.backend, onNew.reason, onNew.status], ['new', 'force', 201])
  const toNew = { backend: 'new', reason: 'affinity', status: 200 }
  t.same(await followUps(gw.url, onNew.orderId), [toNew, toNew, toNew], 'percent 0: still new')
  const onLegacy = await createOrder(gw.url, 'someone')
  t.equal(onLegacy.backend, 'legacy')
  t.equal((await call(gw.adminUrl, 'PUT', '/admin/rollouts/checkout', OPERATOR, { percent: 100 })).status, 200)
  const toLegacy = { backend: 'legacy', reason: 'affinity', status: 200 }
  t.same(await followUps(gw.url, onLegacy.orderId), [toLegacy, toLegacy, toLegacy], 'percent 100: the legacy order stays on legacy')
  t.same(await followUps(gw.url, onNew.orderId), [toNew, toNew, toNew])
  await call(gw.adminUrl, 'POST', '/admin/rollback', OPERATOR, { reason: 'drain test', mode: 'drain' })
  t.same(await followUps(gw.url, onNew.orderId), [toNew, toNew, toNew], 'drain: orders new owns keep going there')
  const fresh2 = await post(gw.url, '/api/payments', '{"orderId":"never-seen"}', 'application/json', { 'x-user-id': 'buyer-on-new' })
  t.same([fresh2.backend, fresh2.reason], ['legacy', 'rollback'], 'drain: everything else goes back')
  await call(gw.adminUrl, 'POST', '/admin/rollback', OPERATOR, { reason: 'hard test', mode: 'hard' })
  const hard = await followUps(gw.url, onNew.orderId)
  t.same(hard.map((h) => [h.backend, h.reason]), [['legacy', 'rollback'], ['legacy', 'rollback'], ['legacy', 'rollback']], 'hard: everything to legacy')
  const unknown = await post(gw.url, '/api/payments', '{"orderId":"NW-unknown"}', 'application/json', { 'x-user-id': 'buyer-on-new' })
  await call(gw.adminUrl, 'POST', '/admin/resume', OPERATOR, {})
  const after = await post(gw.url, '/api/payments', '{"orderId":"NW-unknown"}', 'application/json', { 'x-user-id': 'buyer-on-new' })
  t.same([after.backend, after.reason], ['new', 'force'], 'an unknown order id falls through')
  void unknown
  const metrics = await (await request(gw.adminUrl + '/metrics')).body.text()
  t.match(metrics, /dualtrack_affinity_total\{rollout="checkout",op="record",result="learned"\} 2/)
  t.match(metrics, /dualtrack_affinity_total\{rollout="checkout",op="lookup",result="hit"\} [1-9]/)
  void VIEWER
})

t.test('affinity survives a restart on the file store; entries expire; the LRU bound holds', async (t) => {
  const { legacy, fresh } = await systems(t)
  const dir = tempDir()
  const state = `state: { store: file, file: "${join(dir, 'state.json')}" }`
  const { logger } = captureLogger()
  const first = await buildApp(parseConfig(yaml(legacy, fresh, state), 'a.yaml', {}), { logger })
  await first.gateway.listen({ port: 0, host: '127.0.0.1' })
  const url1 = `http://127.0.0.1:${(first.gateway.server.address() as AddressInfo).port}`
  const order = await createOrder(url1, 'buyer-on-new')
  await first.close()
  const second = await buildApp(parseConfig(yaml(legacy, fresh, state), 'a.yaml', {}), { logger })
  t.teardown(() => second.close())
  await second.gateway.listen({ port: 0, host: '127.0.0.1' })
  const url2 = `http://127.0.0.1:${(second.gateway.server.address() as AddressInfo).port}`
  const pay = await post(url2, '/api/payments', JSON.stringify({ orderId: order.orderId }), 'application/json')
  t.same([pay.backend, pay.reason], ['new', 'affinity'], 'the owner survived the restart')

  const store = new FileStore(join(tempDir(), 's.json'), { affinityMaxEntries: 3 })
  for (let i = 0; i < 5; i++) await store.setOwner('checkout', `o${i}`, 'new', 60_000, 1_764_500_000_000 + i)
  t.equal(store.affinitySize, 3)
  t.equal(await store.getOwner('checkout', 'o0'), undefined, 'the oldest fell out')
  t.same(await store.getOwner('checkout', 'o4'), { owner: 'new', at: 1_764_500_000_004 }, 'the owner, with when it was recorded')
  // the exact expiry rule is unit-tested with injected time (test/state/lru.test.ts); here: it does expire
  await store.setOwner('checkout', 'short', 'new', 100)
  await waitFor(async () => (await store.getOwner('checkout', 'short')) === undefined, { what: 'the 100 ms owner to expire' })
  t.pass('expired after its ttl')
})

t.test('expiry through the gateway', async (t) => {
  const { legacy, fresh } = await systems(t)
  const gw = await startGatewayFromYaml(yaml(legacy, fresh, '', 'ttl'), t)
  const order = await createOrder(gw.url, 'buyer-on-new')
  // a 2 s ttl: the payment that follows at once is well inside it, even on a loaded machine
  t.equal((await post(gw.url, '/api/payments', JSON.stringify({ orderId: order.orderId }), 'application/json')).reason, 'affinity')
  const late = await waitFor(async () => {
    const r = await post(gw.url, '/api/payments', JSON.stringify({ orderId: order.orderId }), 'application/json')
    return r.reason === 'affinity' ? undefined : r
  }, { what: 'the order\'s owner to expire', intervalMs: 100 })
  t.same([late.backend, late.reason], ['legacy', 'unkeyed'], 'after the ttl the order is unknown')
})

t.test('two replicas share affinity through Redis; Redis down never fails an order', async (t) => {
  const { legacy, fresh } = await systems(t)
  const redis = await startRedis(t)
  const state = (i: number) => `state: { store: redis, file: "${join(tempDir(), `c${i}.json`)}", redis: { url: "${redis.url}", prefix: "aff${process.pid}:" } }`
  const a = await startGatewayFromYaml(yaml(legacy, fresh, state(1)), t)
  const b = await startGatewayFromYaml(yaml(legacy, fresh, state(2)), t)
  // a gateway starts serving while its Redis connections may still be opening (the request path
  // never waits on the store); on a loaded machine that can outlast the first request, so the
  // test starts once both replicas report the store up
  const storeUp = async (adminUrl: string) => (await call(adminUrl, 'GET', '/readyz')).body.storeUp === true
  await waitFor(async () => await storeUp(a.adminUrl) && await storeUp(b.adminUrl), { what: 'both replicas to report Redis up' })
  const order = await createOrder(a.url, 'buyer-on-new')
  t.equal(order.backend, 'new')
  // the payment that follows at once, through the other replica
  const pay = await post(b.url, '/api/payments', JSON.stringify({ orderId: order.orderId }), 'application/json')
  t.same([pay.backend, pay.reason, pay.status], ['new', 'affinity', 200])
  // a restart of a replica on Redis keeps it too (it is in Redis, not in the process)
  await a.app.close()
  const c = await startGatewayFromYaml(yaml(legacy, fresh, state(3)), t)
  await waitFor(() => storeUp(c.adminUrl), { what: 'the restarted replica to report Redis up' })
  t.equal((await post(c.url, '/api/payments/notify', `out_trade_no=${order.orderId}`, 'application/x-www-form-urlencoded')).reason, 'affinity')

  await redis.stop()
  const down = await createOrder(b.url, 'buyer-on-new')
  t.equal(down.status, 201, 'the order succeeds with Redis down')
  const fallthrough = await post(c.url, '/api/payments', JSON.stringify({ orderId: 'not-cached-anywhere' }), 'application/json', { 'x-user-id': 'someone' })
  t.same([fallthrough.status, fallthrough.reason], [404, 'percent'], 'a lookup with the store down falls through to the cohort')
  const metrics = await (await request(b.adminUrl + '/metrics')).body.text()
  t.match(metrics, /dualtrack_affinity_total\{rollout="checkout",op="record",result="record_error"\} 1/)
  const cm = await (await request(c.adminUrl + '/metrics')).body.text()
  t.match(cm, /dualtrack_affinity_total\{rollout="checkout",op="lookup",result="error"\} 1/)
})
