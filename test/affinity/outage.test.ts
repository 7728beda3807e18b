// issue 10: no payment split from its order while Redis is down. Two replicas on a real
// redis-server (with its append-only file), real stateful sample systems (a payment or callback
// for an order a system lacks is answered 404), checkouts order -> payment -> callback with the
// callback through the other replica, and redis-server killed for a few seconds in the middle
import t, { type Test } from 'tap'
import { join } from 'node:path'
import { request, Agent } from 'undici'
import { Redis } from 'ioredis'
import { startDemoBackend } from '../../src/demo/index.js'
import { startGatewayFromYaml, tempDir, type TestGateway } from '../helpers/gateway.js'
import { startRedis, type TestRedis } from '../helpers/redis.js'
import { RECOVERY_MS } from '../../src/state/affinity.js'
import { startRelay } from '../helpers/relay.js'
import { call, TOKENS_YAML, VIEWER } from '../helpers/admin.js'
import { waitFor } from '../helpers/wait.js'

const PREFIX = `out${process.pid}:`

function yaml (legacy: string, fresh: string, redis: string, peer: string, file: string, patterns: boolean) {
  return `
backends:
  legacy: { url: "${legacy}", timeoutMs: 5000 }
  new: { url: "${fresh}", timeoutMs: 5000 }
rollouts:
  checkout:
    percent: 50
    salt: outage
    cohortKey: [header:x-user-id]
    affinity:
      learn: [json:$.orderId]
      lookup: [json:$.orderId, form:out_trade_no]
      ttl: 1d
${patterns ? '      idPatterns: { new: "^NW-", legacy: "LG-" }' : ''}
routes:
  - { name: orders, match: { prefix: /api/orders }, rollout: checkout }
  - { name: payments, match: { prefix: /api/payments }, rollout: checkout }
${TOKENS_YAML}
state:
  store: redis
  file: "${file}"
  redis: { url: "${redis}", prefix: "${PREFIX}" }
  # generous: this test is about who answers, not how fast (test/affinity/peers.test.ts bounds the cost);
  # a saturated 2-core machine answers a peer in hundreds of ms
  peers: { urls: ["${peer}"], token: "${VIEWER}", timeoutMs: 2000 }
`
}

interface Fleet { a: TestGateway, b: TestGateway, redis: TestRedis }

async function fleet (t: Test, patterns: boolean): Promise<Fleet> {
  const legacy = await startDemoBackend('legacy')
  const fresh = await startDemoBackend('new')
  t.teardown(() => legacy.close())
  t.teardown(() => fresh.close())
  const redis = await startRedis(t, { persist: true })
  // each replica names the other as its peer; the relays learn the ports once both listen
  const toA = await startRelay(t)
  const toB = await startRelay(t)
  const dir = tempDir()
  const a = await startGatewayFromYaml(yaml(legacy.url, fresh.url, redis.url, toB.url, join(dir, 'a.json'), patterns), t)
  const b = await startGatewayFromYaml(yaml(legacy.url, fresh.url, redis.url, toA.url, join(dir, 'b.json'), patterns), t)
  toA.target = Number(new URL(a.adminUrl).port)
  toB.target = Number(new URL(b.adminUrl).port)
  return { a, b, redis }
}

interface Outcome { checkouts: number, during: number, notFound: { step: string, orderId: string, backend: unknown, reason: unknown, phase?: string }[], failed: string[], created: { id: string, system: string, during: boolean }[] }

/** checkouts from `workers` buyers until stop(): order and payment through one replica, the callback through the other */
function checkouts (f: Fleet, t: Test, workers = 6) {
  const agent = new Agent({ connections: 32 })
  t.teardown(() => agent.close())
  const out: Outcome = { checkouts: 0, during: 0, notFound: [], failed: [], created: [] }
  let down = false
  let stopped = false
  let n = 0
  const post = async (base: string, path: string, body: string, type: string, headers: Record<string, string> = {}) => {
    const r = await request(base + path, { method: 'POST', body, headers: { 'content-type': type, ...headers }, dispatcher: agent })
    return { status: r.statusCode, backend: r.headers['x-dualtrack-backend'], reason: r.headers['x-dualtrack-reason'], json: await r.body.json() as Record<string, unknown> }
  }
  const one = async () => {
    const i = n++
    const [first, other] = i % 2 === 0 ? [f.a, f.b] : [f.b, f.a]
    const during = down
    const order = await post(first.url, '/api/orders', '{"items":[{"sku":"tea","qty":1,"price":9.5}]}', 'application/json', { 'x-user-id': `buyer-${i}` })
    if (order.status !== 201) { out.failed.push(`order ${order.status}`); return }
    const id = String(order.json.orderId)
    out.created.push({ id, system: String(order.backend), during })
    const pay = await post(first.url, '/api/payments', JSON.stringify({ orderId: id, amount: 9.5 }), 'application/json')
    if (pay.status === 404) out.notFound.push({ step: 'payment', orderId: id, backend: pay.backend, reason: pay.reason })
    else if (pay.status !== 200) out.failed.push(`payment ${pay.status}`)
    // the provider's callback carries only the order id, and reaches the other replica
    const notify = await post(other.url, '/api/payments/notify', `out_trade_no=${encodeURIComponent(id)}&trade_status=SUCCESS`, 'application/x-www-form-urlencoded')
    if (notify.status === 404) out.notFound.push({ step: 'callback', orderId: id, backend: notify.backend, reason: notify.reason, phase: `order ${during ? 'during' : 'outside'} the outage, callback ${down ? 'during' : 'outside'} it` })
    else if (notify.status !== 200) out.failed.push(`callback ${notify.status}`)
    out.checkouts++
    if (during && down) out.during++
  }
  const loops = Array.from({ length: workers }, async () => {
    while (!stopped) {
      try { await one() } catch (err) { out.failed.push((err as Error).message) }
    }
  })
  return {
    out,
    setDown (v: boolean) { down = v },
    async stop () { stopped = true; await Promise.all(loops) }
  }
}

async function metric (gw: TestGateway, re: RegExp): Promise<number> {
  const text = await (await request(gw.adminUrl + '/metrics')).body.text()
  const m = re.exec(text)
  return m ? Number(m[1]) : 0
}

for (const patterns of [false, true]) {
  t.test(`Redis killed under checkout traffic through two replicas, ${patterns ? 'with idPatterns' : 'without idPatterns (peers and write-behind)'}: no payment or callback reaches a system without its order`, async (t) => {
    const f = await fleet(t, patterns)
    const load = checkouts(f, t)
    await waitFor(() => load.out.checkouts >= 60, { what: '60 checkouts before the outage' })
    load.setDown(true)
    await f.redis.stop()
    const killed = performance.now()
    const before = load.out.checkouts
    // a few seconds of outage, with enough checkouts begun and finished while it is down
    await waitFor(() => performance.now() - killed >= 2500 && load.out.checkouts - before >= 60 && load.out.during >= 30, { what: '2.5 s and 60 checkouts while Redis is down, 30 of them begun during it', timeoutMs: 30_000 })
    load.setDown(false)
    await f.redis.start()
    const back = performance.now()
    // the owner records refused during the outage reach Redis once it is back (how long it took is
    // printed, not asserted: a loaded machine is no place for a 1 s threshold)
    const snapshot = load.out.created.filter((c) => c.during)
    let inRedis = -1
    if (!patterns) {
      const redis = new Redis(f.redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 })
      t.teardown(() => redis.disconnect())
      await redis.connect()
      await waitFor(async () => {
        const got = await redis.mget(snapshot.map((c) => `${PREFIX}aff:checkout:${c.id}`))
        // the value is the owner and when it was learned ("new 1764500000000")
        return got.every((v, i) => v?.split(' ')[0] === snapshot[i]?.system)
      }, { what: 'every owner record of the outage in Redis after its return' })
      inRedis = performance.now() - back
    }
    await waitFor(() => f.a.app.state.store.up() && f.b.app.state.store.up(), { what: 'both replicas reconnected to Redis' })
    const after = load.out.checkouts
    await waitFor(() => load.out.checkouts - after >= 60, { what: '60 checkouts after Redis is back' })
    await load.stop()

    // what each replica's lookups ended in: when a callback goes astray, this says whether its peer timed out, did not know, or was never asked
    for (const [name, gw] of [['a', f.a], ['b', f.b]] as const) {
      const text = await (await request(gw.adminUrl + '/metrics')).body.text()
      t.comment(`replica ${name}: ` + [...text.matchAll(/dualtrack_affinity_total\{rollout="checkout",op="(lookup|record)",result="([a-z_]+)"\} (\d+)/g)].map((m) => `${m[1]}:${m[2]}=${m[3]}`).join(' '))
    }
    t.same(load.out.notFound, [], 'no payment or callback reached a system without its order')
    t.same(load.out.failed, [], 'no request failed')
    t.ok(load.out.during >= 30, `${load.out.during} checkouts ran wholly during the outage (${load.out.checkouts} in all)`)
    const bothSystems = new Set(load.out.created.filter((c) => c.during).map((c) => c.system))
    t.same([...bothSystems].sort(), ['legacy', 'new'], 'orders on both systems during the outage')

    const peerHits = await metric(f.a, /dualtrack_affinity_total\{rollout="checkout",op="lookup",result="peer_hit"\} (\d+)/) + await metric(f.b, /dualtrack_affinity_total\{rollout="checkout",op="lookup",result="peer_hit"\} (\d+)/)
    const byPattern = await metric(f.a, /dualtrack_affinity_total\{rollout="checkout",op="lookup",result="pattern"\} (\d+)/) + await metric(f.b, /dualtrack_affinity_total\{rollout="checkout",op="lookup",result="pattern"\} (\d+)/)
    if (patterns) {
      t.ok(byPattern >= load.out.checkouts * 2, `every payment and callback decided by its id's form (${byPattern})`)
      t.equal(peerHits, 0, 'no peer was needed')
      return
    }
    t.ok(peerHits > 0, `callbacks through the replica that had not seen the order were answered by its peer (${peerHits})`)

    const queued = await metric(f.a, /dualtrack_affinity_total\{rollout="checkout",op="record",result="flushed"\} (\d+)/) + await metric(f.b, /dualtrack_affinity_total\{rollout="checkout",op="record",result="flushed"\} (\d+)/)
    t.comment(`owner records of the outage in Redis ${Math.round(inRedis)} ms after redis-server was back (${queued} written from the queue)`)
    t.ok(snapshot.length >= 30, `${snapshot.length} owner records of orders made during the outage reached Redis once it was back`)
    t.ok(queued > 0, 'some were written from the write-behind queue')
    t.equal(await metric(f.a, /dualtrack_affinity_pending (\d+)/) + await metric(f.b, /dualtrack_affinity_pending (\d+)/), 0, 'nothing left waiting')
  })
}

t.test('a replica whose store is down answers its peers from memory; 404 for what it does not know', async (t) => {
  const f = await fleet(t, false)
  await f.redis.stop()
  const order = await request(f.a.url + '/api/orders', { method: 'POST', body: '{}', headers: { 'content-type': 'application/json', 'x-user-id': 'someone' } })
  const created = await order.body.json() as { orderId: string }
  const mine = await call(f.a.adminUrl, 'GET', `/admin/affinity/${created.orderId}?rollout=checkout`, VIEWER)
  t.same([mine.status, mine.body.orderId, mine.body.owner], [200, created.orderId, order.headers['x-dualtrack-backend']])
  t.match(mine.body, { learnedAt: /^\d{4}-\d\d-\d\dT/ })
  const other = await call(f.b.adminUrl, 'GET', `/admin/affinity/${created.orderId}`, VIEWER)
  t.same(other, { status: 404, body: { error: 'DUALTRACK_ERR_UNKNOWN_ORDER', message: `no known owner for order ${created.orderId}`, pending: 0 }, headers: other.headers }, 'unknown there, and nothing of its own waiting for the store')
  const unknown = await call(f.a.adminUrl, 'GET', '/admin/affinity/never-made', VIEWER)
  t.same([unknown.status, unknown.body.pending], [404, 1], 'a replica says how many owner records it still holds for the store')
  t.equal((await call(f.a.adminUrl, 'GET', `/admin/affinity/${created.orderId}`)).status, 401, 'a token is needed')
  t.equal((await call(f.a.adminUrl, 'GET', `/admin/affinity/${created.orderId}?rollout=nope`, VIEWER)).status, 404)
})

/**
 * two replicas that reach Redis each through its own relay (so one can lose it, or be back, while
 * the other is not) and each other through relays, as peers
 */
async function relayedFleet (t: Test) {
  const legacy = await startDemoBackend('legacy')
  const fresh = await startDemoBackend('new')
  t.teardown(() => legacy.close())
  t.teardown(() => fresh.close())
  const redis = await startRedis(t)
  const redisPort = Number(new URL(redis.url).port)
  const viaA = await startRelay(t)
  const viaB = await startRelay(t)
  viaA.target = redisPort
  viaB.target = redisPort
  const toA = await startRelay(t)
  const toB = await startRelay(t)
  const dir = tempDir()
  const redisVia = (r: { url: string }) => r.url.replace('http:', 'redis:')
  const a = await startGatewayFromYaml(yaml(legacy.url, fresh.url, redisVia(viaA), toB.url, join(dir, 'a.json'), false), t)
  const b = await startGatewayFromYaml(yaml(legacy.url, fresh.url, redisVia(viaB), toA.url, join(dir, 'b.json'), false), t)
  toA.target = Number(new URL(a.adminUrl).port)
  toB.target = Number(new URL(b.adminUrl).port)
  await waitFor(() => a.app.state.store.up() && b.app.state.store.up(), { what: 'both replicas on Redis' })
  return { a, b, viaA, viaB, redisPort }
}

/** orders through one replica until one lands on new (50%): its id, and how many orders were made */
async function orderOnNew (g: TestGateway, users: string): Promise<{ orderId: string, made: number }> {
  for (let i = 0; i < 200; i++) {
    const r = await request(g.url + '/api/orders', { method: 'POST', body: '{}', headers: { 'content-type': 'application/json', 'x-user-id': `${users}-${i}` } })
    const body = await r.body.json() as { orderId: string }
    if (r.headers['x-dualtrack-backend'] === 'new') return { orderId: body.orderId, made: i + 1 }
  }
  throw new Error('no order landed on new in 200 tries at 50%')
}

t.test('a replica that is back late keeps its peers asking until every record it held is in the store', async (t) => {
  const { a, b, viaA, viaB, redisPort } = await relayedFleet(t)

  // both lose Redis; an order made on new through A waits in A's memory
  viaA.target = undefined
  viaB.target = undefined
  viaA.cut()
  viaB.cut()
  await waitFor(() => !a.app.state.store.up() && !b.app.state.store.up(), { what: 'both replicas cut off from Redis' })
  const { orderId, made } = await orderOnNew(a, 'late')
  t.equal(await metric(a, /dualtrack_affinity_pending (\d+)/), made, 'the owner records wait on A')

  // B is back, and stays back past its own recovery window, while A is still cut off
  viaB.target = redisPort
  const store = b.app.state.store as unknown as { recoveredAt (): number }
  await waitFor(() => b.app.state.store.up() && Number.isFinite(store.recoveredAt()) && Date.now() - store.recoveredAt() > RECOVERY_MS, { what: `B back on Redis for more than ${RECOVERY_MS} ms` })
  const notify = (id: string) => request(b.url + '/api/payments/notify', { method: 'POST', body: `out_trade_no=${id}&trade_status=SUCCESS`, headers: { 'content-type': 'application/x-www-form-urlencoded' } })
  const cb = await notify(orderId)
  await cb.body.dump()
  t.same([cb.statusCode, cb.headers['x-dualtrack-backend'], cb.headers['x-dualtrack-reason']], [200, 'new', 'affinity'], 'Redis does not know the order yet; A, still holding it, does: the callback reaches new')

  // A is back and writes what it held; the next unknown id B meets gets "nothing pending" from A,
  // and after that B trusts Redis's unknown without asking
  viaA.target = redisPort
  await waitFor(async () => await metric(a, /dualtrack_affinity_pending (\d+)/) === 0, { what: 'A wrote its queued owner record' })
  await waitFor(async () => (await call(b.adminUrl, 'GET', '/readyz')).body.peersPending === 0, { what: 'B\'s poll to see A holding nothing' })
  const peerMisses = () => metric(b, /dualtrack_affinity_total\{rollout="checkout",op="lookup",result="peer_miss"\} (\d+)/)
  const before = await peerMisses()
  await (await notify('never-made-1')).body.dump()
  t.equal(await peerMisses(), before + 1, 'the first unknown id after the outage still asks the peers')
  await (await notify('never-made-2')).body.dump()
  await (await notify(orderId)).body.dump()
  t.equal(await peerMisses(), before + 1, 'once every peer said it holds nothing, an unknown id is not asked about')
  t.equal(await metric(b, /dualtrack_affinity_total\{rollout="checkout",op="lookup",result="miss"\} (\d+)/) >= 1, true, 'it is a plain miss')
})

t.test('a replica cut off from Redis alone: the others, whose Redis answers, learn it holds records and ask it', async (t) => {
  const { a, b, viaA, redisPort } = await relayedFleet(t)
  const readyz = async (g: TestGateway) => (await call(g.adminUrl, 'GET', '/readyz')).body as { affinityPending: number, peersPending: number, storeUp: boolean }

  // only A loses Redis: B's store keeps answering, so B never sees an outage
  viaA.target = undefined
  viaA.cut()
  await waitFor(() => !a.app.state.store.up(), { what: 'A cut off from Redis' })
  const { orderId } = await orderOnNew(a, 'cut')
  t.ok((await readyz(a)).affinityPending >= 1, 'A holds the owner records it could not write (/readyz)')
  t.equal((await readyz(b)).storeUp, true, 'B is on Redis all along')
  await waitFor(async () => (await readyz(b)).peersPending === 1, { what: 'B\'s poll of its peers to see A holding records' })

  const cb = await request(b.url + '/api/payments/notify', { method: 'POST', body: `out_trade_no=${orderId}&trade_status=SUCCESS`, headers: { 'content-type': 'application/x-www-form-urlencoded' } })
  await cb.body.dump()
  t.same([cb.statusCode, cb.headers['x-dualtrack-backend'], cb.headers['x-dualtrack-reason']], [200, 'new', 'affinity'], 'Redis does not know the order; B asked A, which does: the callback reaches new')

  // A is back and writes its records; B stops counting it
  viaA.target = redisPort
  await waitFor(async () => (await readyz(a)).affinityPending === 0, { what: 'A wrote its queued owner records' })
  await waitFor(async () => (await readyz(b)).peersPending === 0, { what: 'B to see A holding nothing' })
})
