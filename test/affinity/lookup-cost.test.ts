// what an affinity lookup costs the store (issue 17): concurrent lookups of one order id share one
// Redis read, the lookups of one event-loop turn share one MGET, an id the store did not know is not
// asked again for a second, and a route that cannot carry an order id makes no lookup at all.
// Counted on a real redis-server with MONITOR
import t, { type Test } from 'tap'
import { join } from 'node:path'
import { request } from 'undici'
import { Redis } from 'ioredis'
import pino from 'pino'
import { startDemoBackend, type DemoBackend } from '../../src/demo/index.js'
import { startGatewayFromYaml, tempDir, type TestGateway } from '../helpers/gateway.js'
import { startRedis, type TestRedis } from '../helpers/redis.js'
import { TOKENS_YAML } from '../helpers/admin.js'
import { waitFor } from '../helpers/wait.js'
import { WRITE_METHODS } from '../../src/config/index.js'
import { NOOP_HOOKS } from '../../src/proxy/index.js'
import { lookupSourcesOn } from '../../src/routing/index.js'
import { RedisStore, MGET_MAX_KEYS } from '../../src/state/redis-store.js'

function yaml (legacy: DemoBackend, fresh: DemoBackend, state: string) {
  return `
backends:
  legacy: { url: "${legacy.url}", timeoutMs: 5000 }
  new: { url: "${fresh.url}", timeoutMs: 5000 }
rollouts:
  checkout:
    percent: 0
    salt: cost
    cohortKey: [header:x-user-id]
    force: { new: [buyer-on-new] }
    affinity:
      learn: [json:$.orderId]
      lookup: [path:/api/orders/:orderId, form:out_trade_no]
      ttl: 1d
routes:
  - { name: orders, match: { prefix: /api/orders }, rollout: checkout }
  - { name: payments, match: { prefix: /api/payments }, rollout: checkout }
  - { name: assets, match: { prefix: /assets, methods: [GET, HEAD] }, rollout: checkout }
${TOKENS_YAML}
${state}
`
}

interface Setup { legacy: DemoBackend, fresh: DemoBackend, redis: TestRedis, prefix: string, gateway (name: string): Promise<TestGateway> }

async function setup (t: Test): Promise<Setup> {
  const legacy = await startDemoBackend('legacy')
  const fresh = await startDemoBackend('new')
  t.teardown(() => legacy.close())
  t.teardown(() => fresh.close())
  const redis = await startRedis(t)
  const prefix = `cost${process.pid}:`
  return {
    legacy,
    fresh,
    redis,
    prefix,
    gateway: (name) => startGatewayFromYaml(yaml(legacy, fresh, `state: { store: redis, file: "${join(tempDir(), `${name}.json`)}", redis: { url: "${redis.url}", prefix: "${prefix}" } }`), t)
  }
}

/** every command redis runs from now on, as its arguments (MONITOR) */
async function monitor (t: Test, url: string) {
  const client = new Redis(url, { lazyConnect: true })
  await client.connect()
  const m = await client.monitor()
  t.teardown(() => { m.disconnect(); client.disconnect() })
  const seen: string[][] = []
  m.on('monitor', (_time: string, args: string[]) => { seen.push(args) })
  const other = new Redis(url)
  t.teardown(() => other.disconnect())
  return {
    seen,
    other,
    /** wait until redis ran everything sent before this call (a marker shows up after it) */
    async settle () {
      const marker = `settle-${Math.random()}`
      await other.echo(marker)
      await waitFor(() => seen.some((a) => a[0]?.toLowerCase() === 'echo' && a[1] === marker), { timeoutMs: 10_000, what: 'MONITOR to show the marker' })
    },
    /** the keys each GET or MGET read, one list per command */
    reads () { return seen.filter((a) => ['get', 'mget'].includes(a[0]?.toLowerCase() ?? '')).map((a) => a.slice(1)) },
    /** how many times key was read (by a GET or within an MGET) */
    gets (key: string) { return this.reads().flat().filter((k) => k === key).length }
  }
}

async function callback (url: string, orderId: string) {
  const r = await request(`${url}/api/payments/notify`, { method: 'POST', body: `out_trade_no=${encodeURIComponent(orderId)}&trade_status=SUCCESS`, headers: { 'content-type': 'application/x-www-form-urlencoded' } })
  await r.body.text()
  return { status: r.statusCode, backend: r.headers['x-dualtrack-backend'], reason: r.headers['x-dualtrack-reason'] }
}

async function metric (gw: TestGateway, result: string): Promise<number> {
  const text = await (await request(gw.adminUrl + '/metrics')).body.text()
  const m = new RegExp(`dualtrack_affinity_total\\{rollout="checkout",op="lookup",result="${result}"\\} (\\d+)`).exec(text)
  return m === null ? -1 : Number(m[1])
}

t.test('50 concurrent callbacks for one unknown order id make one Redis read', async (t) => {
  const s = await setup(t)
  const gw = await s.gateway('a')
  const mon = await monitor(t, s.redis.url)
  const id = 'NOSUCH-1'
  // redis holds every command for 300 ms (under the 500 ms command timeout): the lookups of all
  // 50 callbacks are under way at once, none can be answered by the negative cache yet
  await mon.other.call('CLIENT', 'PAUSE', '300', 'ALL')
  const answers = await Promise.all(Array.from({ length: 50 }, () => callback(gw.url, id)))
  await mon.settle()
  t.equal(mon.gets(`${s.prefix}aff:checkout:${id}`), 1, 'one read for 50 lookups of one id')
  t.same(new Set(answers.map((a) => `${a.status} ${a.backend} ${a.reason}`)), new Set(['404 legacy unkeyed']), 'every callback routed by the rules below affinity (no user key: unkeyed, legacy)')
  t.equal(await metric(gw, 'miss'), 50, 'each lookup counted once, as if it had read alone')
})

t.test('50 concurrent callbacks for an order another replica created share one read and all reach its owner', async (t) => {
  const s = await setup(t)
  const a = await s.gateway('a')
  const b = await s.gateway('b')
  const mon = await monitor(t, s.redis.url)
  // created through B on new (a forced buyer): A knows nothing of it but what Redis holds
  const r = await request(`${b.url}/api/orders`, { method: 'POST', body: '{"items":[{"sku":"tea","qty":1,"price":9.5}]}', headers: { 'content-type': 'application/json', 'x-user-id': 'buyer-on-new' } })
  const order = await r.body.json() as { orderId: string }
  t.equal(r.headers['x-dualtrack-backend'], 'new')
  await mon.other.call('CLIENT', 'PAUSE', '300', 'ALL')
  const answers = await Promise.all(Array.from({ length: 50 }, () => callback(a.url, order.orderId)))
  await mon.settle()
  t.same(new Set(answers.map((x) => `${x.status} ${x.backend} ${x.reason}`)), new Set(['200 new affinity']), 'every callback reached the order\'s owner')
  t.equal(mon.gets(`${s.prefix}aff:checkout:${order.orderId}`), 1, 'one read for 50 lookups of one id')
  t.equal(await metric(a, 'hit'), 50, 'each lookup counted as a hit')
})

t.test('the lookups of one event-loop turn are one MGET, each answered with its own key', async (t) => {
  const redis = await startRedis(t)
  const prefix = `turn${process.pid}:`
  const store = new RedisStore({ connection: { target: { kind: 'server', url: redis.url } }, prefix, cacheFile: join(tempDir(), 'turn.json'), log: pino({ level: 'silent' }) })
  await store.connect()
  t.teardown(() => store.close())
  const mon = await monitor(t, redis.url)
  await mon.other.set(`${prefix}aff:checkout:ORD-new`, 'new 1764500000000')
  await mon.other.set(`${prefix}aff:checkout:ORD-legacy`, 'legacy 1764500000001')
  // written before the ledger: the owner alone, no time
  await mon.other.set(`${prefix}aff:checkout:ORD-old`, 'new')
  await mon.other.set(`${prefix}aff:other:ORD-new`, 'legacy 1764500000002')
  await mon.settle()
  const before = mon.reads().length
  const ids: [string, string][] = [['checkout', 'ORD-new'], ['checkout', 'NOSUCH-1'], ['checkout', 'ORD-legacy'], ['checkout', 'ORD-old'], ['other', 'ORD-new'], ['checkout', 'NOSUCH-2']]
  const found = await Promise.all(ids.map(([r, id]) => store.getOwner(r, id)))
  t.same(found, [{ owner: 'new', at: 1764500000000 }, undefined, { owner: 'legacy', at: 1764500000001 }, { owner: 'new', at: null }, { owner: 'legacy', at: 1764500000002 }, undefined])
  await mon.settle()
  t.same(mon.reads().slice(before), [ids.map(([r, id]) => `${prefix}aff:${r}:${id}`)], 'one MGET of the six keys, in the order asked')
  // a later turn is a read of its own
  t.same(await store.getOwner('checkout', 'ORD-legacy'), { owner: 'legacy', at: 1764500000001 })
  await mon.settle()
  t.equal(mon.reads().length, before + 2)
  // a burst past MGET_MAX_KEYS is read by several MGETs, every key once
  const burst = Array.from({ length: MGET_MAX_KEYS + 3 }, (_, i) => `BURST-${i}`)
  const burstFound = await Promise.all(burst.map((id) => store.getOwner('checkout', id === 'BURST-501' ? 'ORD-new' : id)))
  t.same(burstFound.filter((f) => f !== undefined), [{ owner: 'new', at: 1764500000000 }], 'each lookup its own answer, across MGETs')
  await mon.settle()
  t.same(mon.reads().slice(before + 2).map((keys) => keys.length), [MGET_MAX_KEYS, 3], 'two MGETs, the first full')
  // Redis gone: every lookup of the turn fails (as each GET did), and a later one fails too
  await redis.stop()
  const failed = await Promise.allSettled([store.getOwner('checkout', 'ORD-new'), store.getOwner('checkout', 'NOSUCH-3')])
  t.same(failed.map((f) => f.status), ['rejected', 'rejected'], 'each lookup of the turn is refused')
  await t.rejects(store.getOwner('checkout', 'ORD-new'))
})

t.test('a route that cannot carry an order id makes no lookup', async (t) => {
  const s = await setup(t)
  const gw = await s.gateway('a')
  const mon = await monitor(t, s.redis.url)
  // /assets (GET, HEAD): the path: pattern needs /api/orders/..., and the form: source a body
  for (let i = 0; i < 20; i++) {
    const r = await request(`${gw.url}/assets/api/orders/o-${i}?out_trade_no=o-${i}`, { headers: { 'x-user-id': `u-${i}` } })
    await r.body.text()
    t.equal(r.headers['x-dualtrack-reason'], 'percent')
  }
  // the same ids on a route that can carry them are looked up
  const r = await request(`${gw.url}/api/orders/o-1`, { headers: { 'x-user-id': 'u-1' } })
  await r.body.text()
  await mon.settle()
  const affReads = mon.reads().flat().filter((k) => k.startsWith(`${s.prefix}aff:`))
  t.same(affReads, [`${s.prefix}aff:checkout:o-1`], 'only the request on /api/orders read the store')
  t.equal(await metric(gw, 'miss'), 1, 'one lookup counted: the /api/orders one')
  t.equal(await metric(gw, 'hit'), 0)
})

t.test('the lookup hook is chosen once per config: the no-op when no route can carry an id', async (t) => {
  const gateway = (routes: string) => startGatewayFromYaml(`
backends:
  legacy: { url: "http://127.0.0.1:1" }
  new: { url: "http://127.0.0.1:2" }
rollouts:
  checkout:
    percent: 10
    cohortKey: [header:x-user-id]
    affinity: { learn: [json:$.orderId], lookup: [path:/api/orders/:orderId, json:$.orderId], ttl: 1d }
routes:
${routes}
`, t)
  const none = await gateway('  - { name: assets, match: { prefix: /assets, methods: [GET] }, rollout: checkout }\n  - { name: users, match: { prefix: /api/users, methods: [GET] }, rollout: checkout }')
  t.equal(none.app.dataPlane.hooks.lookupOwner, NOOP_HOOKS.lookupOwner, 'no route can carry an order id: the no-op')
  const some = await gateway('  - { name: assets, match: { prefix: /assets, methods: [GET] }, rollout: checkout }\n  - { name: orders, match: { prefix: /api/orders }, rollout: checkout }')
  t.not(some.app.dataPlane.hooks.lookupOwner, NOOP_HOOKS.lookupOwner, 'a route that can: a real lookup')
})

t.test('which lookup sources a route can carry', async (t) => {
  const specs = ['path:/api/orders/:orderId', 'path:/shops/:shop/orders/:orderId', 'query:orderId', 'header:x-order-id', 'json:$.orderId', 'form:out_trade_no', 'xml:out_trade_no']
  const on = (prefix: string, methods?: string[]) => lookupSourcesOn(specs, { prefix, methods }, WRITE_METHODS)
  t.same(on('/'), specs, 'a catch-all route keeps every source')
  t.same(on('/api/orders'), specs.filter((s) => !s.startsWith('path:/shops')))
  t.same(on('/api/orders/'), on('/api/orders'), 'a trailing slash is the same prefix')
  t.same(on('/api/orders/7'), on('/api/orders'), 'a prefix that fills the id segment still matches the pattern')
  t.same(on('/api/orders/7/items'), specs.filter((s) => !s.startsWith('path:')), 'deeper than the pattern: no path match')
  t.same(on('/api/ordersX'), specs.filter((s) => !s.startsWith('path:')), 'whole segments only')
  t.same(on('/shops/s1/orders'), specs.filter((s) => !s.startsWith('path:/api')))
  t.same(on('/assets', ['GET', 'HEAD']), ['query:orderId', 'header:x-order-id'], 'no write method: no body, so no body source')
  t.same(on('/assets', ['GET', 'POST']), specs.filter((s) => !s.startsWith('path:')))
  t.same(lookupSourcesOn(['path:/api/orders/:orderId', 'form:out_trade_no'], { prefix: '/assets', methods: ['GET'] }, WRITE_METHODS), [], 'nothing left: the route makes no lookup')
})
