// /admin/stats with the Redis store: two gateway processes on one real redis-server, traffic
// through both; either replica's /admin/stats answers the sum (scope fleet, 2 replicas). Redis
// killed: the same call answers this replica's own series and says why, never an error
import t, { type Test } from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { request, Agent } from 'undici'
import { Redis } from 'ioredis'
import { startBackend } from '../helpers/backend.js'
import { basicYaml, tempDir } from '../helpers/gateway.js'
import { startRedis } from '../helpers/redis.js'
import { spawnGateway, type GatewayProcess } from '../helpers/process.js'
import { call, OPERATOR, VIEWER } from '../helpers/admin.js'
import { waitFor } from '../helpers/wait.js'
import { StatsRing, SLOT_MS, fromFields, toFields, type Delta } from '../../src/stats/index.js'
import { LATENCY_BUCKETS } from '../../src/metrics/index.js'

interface Series { rps: (number | null)[], errorRate: (number | null)[], p99Ms: (number | null)[] }
interface StatsAnswer {
  scope: string
  replicas?: number
  fleet?: string
  backends: { legacy: Series, new: Series }
  shadow: { match: (number | null)[] }
  rollouts: Record<string, { share: (number | null)[], target: (number | null)[], sampleRatio: { n: number } }>
}

// requests in the window: rps is per second over 5 s slots
const total = (s: StatsAnswer) => Math.round([...s.backends.legacy.rps, ...s.backends.new.rps].reduce<number>((a, v) => a + (v ?? 0), 0) * SLOT_MS / 1000)

async function statsOf (g: GatewayProcess): Promise<StatsAnswer> {
  const r = await call(g.adminUrl, 'GET', '/admin/stats?window=15m', VIEWER)
  if (r.status !== 200) throw new Error(`/admin/stats answered ${r.status}: ${JSON.stringify(r.body)}`)
  return r.body as unknown as StatsAnswer
}

t.test('a slot\'s counts go to Redis fields and come back whole', async (t) => {
  const width = LATENCY_BUCKETS.length + 1
  const side = (r: number, e: number) => ({ requests: r, errors: e, buckets: Array.from({ length: width }, (_, k) => (k === 2 ? r : 0)) })
  const d: Delta = { backends: { legacy: side(30, 1), new: side(10, 0) }, shadow: { match: 4, mismatch: 1, error: 0 }, rollouts: { 'check.out': { decided: 40, onNew: 10, ratioTotal: 40, ratioNew: 10, ratioExpected: 40 * 0.2537, ratioVariance: 40 * 0.2537 * 0.7463 } } }
  const f = toFields(d, 'replica-a')
  t.equal(f['p:replica-a'], 1, 'the replica marks the slot')
  t.notOk('s:e' in f, 'zeros are not written')
  t.same(Object.entries(f).filter(([, v]) => !Number.isInteger(v)), [], 'every field is whole: HINCRBY adds integers only (shares in 1/10,000)')
  // two replicas' HINCRBYs add up field by field, as Redis does
  const sum: Record<string, string> = {}
  for (const [k, v] of [...Object.entries(f), ...Object.entries(toFields(d, 'replica-b'))]) sum[k] = String(Number(sum[k] ?? 0) + v)
  const back = fromFields(sum, width)
  t.same(back?.replicas.sort(), ['replica-a', 'replica-b'])
  t.equal(back?.delta.backends.legacy.requests, 60)
  t.equal(back?.delta.backends.legacy.errors, 2)
  t.equal(back?.delta.backends.new.buckets[2], 20)
  const r = back?.delta.rollouts['check.out']
  t.same([r?.decided, r?.onNew, r?.ratioTotal, r?.ratioNew], [80, 20, 80, 20], 'a dotted rollout name survives')
  t.equal(Math.round((r?.ratioExpected ?? 0) * 1e6) / 1e6, 80 * 0.2537, 'the expected shares add up')
  t.equal(Math.round((r?.ratioVariance ?? 0) * 1e6) / 1e6, Math.round(80 * 0.2537 * 0.7463 * 1e6) / 1e6, 'and their variances')
  t.equal(fromFields({}, width), null, 'an absent hash is no data, not zeros')

  // a ring filled from the fleet: per second rates of the sum; an unwritten slot stays null
  const ring = new StatsRing(LATENCY_BUCKETS, 12)
  const slot = 1_000_000
  ring.put(slot, back?.delta ?? null, { 'check.out': 25 })
  ring.put(slot - 1, null)
  const v = ring.view((slot + 1) * SLOT_MS - 1, 60_000, '1m', { scope: 'fleet', replicas: 2 })
  t.equal(v.scope, 'fleet')
  t.equal(v.replicas, 2)
  t.equal(v.backends.legacy.rps.at(-1), 12)
  t.equal(v.backends.legacy.rps.at(-2), null)
  t.equal(v.rollouts['check.out']?.share.at(-1), 0.25)
  t.equal(v.rollouts['check.out']?.target.at(-1), 0.25)
})

t.test('two replicas: either one\'s /admin/stats shows the fleet; Redis down: its own, saying why', async (t) => {
  // persisted: the fleet's slots outlive the restart below, as they would on a real Redis with an AOF
  const redis = await startRedis(t, { persist: true })
  const legacy = await startBackend('legacy', t)
  const fresh = await startBackend('new', t)
  const dir = tempDir()
  const prefix = `stats${process.pid}:`
  const replicas: GatewayProcess[] = []
  for (let i = 0; i < 2; i++) {
    const file = join(dir, `gateway-${i}.yaml`)
    writeFileSync(file, basicYaml(legacy.url, fresh.url) +
      `\nserver: { host: 127.0.0.1, port: 0 }\nadmin: { host: 127.0.0.1, port: 0, tokens: [{ name: oncall, token: "${OPERATOR}", role: operator }, { name: grafana, token: "${VIEWER}", role: viewer }] }\n` +
      `state: { store: redis, file: "${join(dir, `cache-${i}.json`)}", redis: { url: "${redis.url}", prefix: "${prefix}" } }\n`)
    replicas.push(await spawnGateway(file, t))
  }
  const [a, b] = replicas as [GatewayProcess, GatewayProcess]

  // both replicas answer fleet scope before any traffic (each sampled at least twice: a baseline and a slot)
  await waitFor(async () => {
    const [sa, sb] = await Promise.all([statsOf(a), statsOf(b)])
    return sa.scope === 'fleet' && sb.scope === 'fleet' && sa.replicas === 2 && sb.replicas === 2
  }, { what: 'both replicas on fleet scope, 2 replicas contributing', timeoutMs: 60_000 })
  const base = [total(await statsOf(a)), total(await statsOf(b))]
  t.same(base, [0, 0], 'no traffic yet')

  // a different count through each replica, so that neither alone can make the sum
  const agent = new Agent({ connections: 4 })
  t.teardown(() => agent.close())
  const send = async (tt: Test, g: GatewayProcess, n: number) => {
    for (let i = 0; i < n; i++) {
      const r = await request(`${g.url}/api/orders`, { headers: { 'x-user-id': `u${i}` }, dispatcher: agent })
      await r.body.dump()
      tt.equal(r.statusCode, 200)
    }
  }
  await Promise.all([send(t, a, 30), send(t, b, 17)])

  await t.test('the sum on either replica', async (t) => {
    for (const g of [a, b]) {
      const s = await waitFor(async () => {
        const v = await statsOf(g)
        return v.scope === 'fleet' && total(v) === 47 ? v : undefined
      }, { what: '47 requests (30 + 17) in the fleet\'s series', timeoutMs: 60_000 })
      t.equal(s.replicas, 2)
      t.equal(s.fleet, undefined)
      t.ok(s.backends.new.p99Ms.some((v) => v !== null), 'p99 from the summed histograms')
      t.equal(s.rollouts.checkout?.target.at(-1), 0.5, 'the target is the shared state\'s')
      t.ok(s.rollouts.checkout?.share.some((v) => v !== null), 'the share on new, of both')
    }
  })

  await t.test('ten consoles polling at once cost one read of the window', async (t) => {
    const direct = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 })
    t.teardown(() => direct.disconnect())
    await direct.connect()
    const reads = async () => Number(/cmdstat_hgetall:calls=(\d+)/.exec(await direct.info('commandstats'))?.[1] ?? 0)
    const before = await reads()
    const views = await Promise.all(Array.from({ length: 10 }, () => statsOf(a)))
    const after = await reads()
    t.same(new Set(views.map((v) => v.scope)), new Set(['fleet']))
    // a 15-minute window is 180 slot hashes; ten separate reads would be 1,800. Two reads are allowed:
    // the ten may straddle the end of the 1 s reuse on a loaded machine
    t.ok(after - before <= 2 * 180, `${after - before} hash reads for ten concurrent /admin/stats`)
  })

  await t.test('Redis killed: each replica\'s own series, with the reason', async (t) => {
    await redis.stop()
    for (const [g, own] of [[a, 30], [b, 17]] as const) {
      const s = await waitFor(async () => {
        const v = await statsOf(g)
        return v.scope === 'local' ? v : undefined
      }, { what: 'local scope once Redis is gone', timeoutMs: 30_000 })
      t.match(s.fleet, /^unavailable: /, `says why: ${s.fleet}`)
      t.equal(s.replicas, undefined)
      t.equal(total(s), own, 'this replica\'s own requests only')
    }
  })

  await t.test('slots counted while Redis was down reach the fleet once it is back', async (t) => {
    await send(t, a, 6)
    // the outage's requests are in a's own series at once, and nowhere else yet
    await waitFor(async () => total(await statsOf(a)) === 36, { what: 'a\'s 6 new requests in its own series', timeoutMs: 30_000 })
    await redis.start()
    for (const g of [a, b]) {
      const s = await waitFor(async () => {
        const v = await statsOf(g)
        return v.scope === 'fleet' && total(v) === 53 ? v : undefined
      }, { what: '53 requests (47 + 6 sent during the outage) in the fleet\'s series', timeoutMs: 60_000 })
      t.equal(s.replicas, 2)
    }
  })
})
