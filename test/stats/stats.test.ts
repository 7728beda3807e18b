// /admin/stats: the console's series from fixed rings of 5 s slots, fed from the counters the
// request path already records; time is injected
import t from 'tap'
import { request } from 'undici'
import { StatsRing, SLOT_MS, createStats, parseWindow, sampleRatio, type Snapshot } from '../../src/stats/index.js'
import { createMetrics, LATENCY_BUCKETS } from '../../src/metrics/index.js'
import { startBackend } from '../helpers/backend.js'
import { startGatewayFromYaml, basicYaml } from '../helpers/gateway.js'
import { OPERATOR, VIEWER, TOKENS_YAML, call } from '../helpers/admin.js'
import { waitFor } from '../helpers/wait.js'

const T0 = Date.UTC(2026, 10, 30, 3, 0, 0)
const snap = (legacy: number, fresh: number, opts: { errors?: number, slow?: number, onNew?: number, target?: number, match?: number } = {}): Snapshot => {
  const share = (opts.target ?? 25) / 100
  const buckets = (n: number, slow: number) => { const b = new Array<number>(LATENCY_BUCKETS.length + 1).fill(0); b[1] = n - slow; b[7] = slow; return b }
  return {
    backends: {
      legacy: { requests: legacy, errors: 0, buckets: buckets(legacy, 0) },
      new: { requests: fresh, errors: opts.errors ?? 0, buckets: buckets(fresh, opts.slow ?? 0) }
    },
    shadow: { match: opts.match ?? 0, mismatch: 0, error: 0 },
    rollouts: { checkout: { decided: legacy + fresh, onNew: opts.onNew ?? fresh, ratioTotal: legacy + fresh, ratioNew: opts.onNew ?? fresh, ratioExpected: (legacy + fresh) * share, ratioVariance: (legacy + fresh) * share * (1 - share), targetPercent: opts.target ?? 25 } }
  }
}

t.test('deltas land in 5 s slots as rates, error rates, p99 and share', async (t) => {
  const ring = new StatsRing(LATENCY_BUCKETS, 180)
  ring.record(T0, snap(0, 0))
  ring.record(T0 + SLOT_MS, snap(75, 25, { errors: 5, slow: 1, match: 10 }))
  const v = ring.view(T0 + SLOT_MS, 15 * 60_000, '15m')
  t.equal(v.t.length, 180)
  t.equal(v.stepMs, 5000)
  t.equal(v.t.at(-1), T0 + 2 * SLOT_MS, 'the end of the slot')
  t.equal(v.backends.legacy.rps.at(-1), 15)
  t.equal(v.backends.new.rps.at(-1), 5)
  t.equal(v.backends.new.errorRate.at(-1), 0.2)
  t.equal(v.backends.legacy.errorRate.at(-1), 0)
  t.equal(v.backends.legacy.p99Ms.at(-1), 9.95, 'p99 interpolated in the 5-10 ms bucket')
  t.equal(v.backends.new.p99Ms.at(-1), 875, '1 of 25 slow: p99 three quarters into the 0.5-1 s bucket')
  t.equal(v.shadow.match.at(-1), 2)
  t.equal(v.rollouts.checkout?.share.at(-1), 0.25)
  t.equal(v.rollouts.checkout?.target.at(-1), 0.25)
  t.equal(v.backends.legacy.rps[0], null, 'a slot with no sample is null, not 0')
  t.equal(v.backends.legacy.rps.at(-2), 0, 'the first sample is the baseline')

  // a counter that goes down (a registry rebuilt) counts from zero
  ring.record(T0 + 2 * SLOT_MS, snap(10, 0))
  t.equal(ring.view(T0 + 2 * SLOT_MS, 60_000, '1m').backends.legacy.rps.at(-1), 2)
})

t.test('memory stays fixed after 10,000 slots of injected time', async (t) => {
  const ring = new StatsRing(LATENCY_BUCKETS)
  ring.record(T0, snap(0, 0))
  const before = ring.footprint()
  let legacy = 0
  for (let i = 1; i <= 10_000; i++) {
    legacy += 10
    ring.record(T0 + i * SLOT_MS, snap(legacy, legacy / 10))
  }
  t.equal(ring.footprint(), before, `${before} bytes before and after`)
  const v = ring.view(T0 + 10_000 * SLOT_MS, 3_600_000, '1h')
  t.equal(v.t.length, ring.capacity)
  t.equal(v.backends.legacy.rps.filter((x) => x === 2).length, ring.capacity, 'every slot of the hour holds its own delta')
  // a gap: slots not written since are null, never last hour's numbers
  const later = T0 + 10_000 * SLOT_MS + 30 * 60_000
  const gap = ring.view(later, 15 * 60_000, '15m')
  t.ok(gap.backends.legacy.rps.every((x) => x === null))
})

t.test('the sample-ratio check', async (t) => {
  t.same(sampleRatio(0, 0, 0.25), { n: 0, observed: null, expected: 0.25, pValue: null, ok: null })
  const fine = sampleRatio(1000, 243, 0.25)
  t.equal(fine.ok, true)
  t.ok((fine.pValue as number) > 0.5)
  const off = sampleRatio(1000, 320, 0.25)
  t.equal(off.ok, false)
  t.ok((off.pValue as number) < 1e-6)
  t.match(sampleRatio(100, 1, 0), { ok: false, pValue: 0 })
  t.match(sampleRatio(100, 100, 1), { ok: true, pValue: 1 })
  // a mix: 500 requests at 10% and 500 in a 50% segment, each with its own variance
  const variance = 500 * 0.09 + 500 * 0.25
  t.match(sampleRatio(1000, 310, 0.3, variance), { n: 1000, observed: 0.31, expected: 0.3, ok: true })
  t.match(sampleRatio(1000, 360, 0.3, variance), { ok: false }, '60 over, 3.7 standard deviations of the mix')
  t.match(sampleRatio(1000, 495, 0.5, 0), { ok: false, pValue: 0 }, 'shares of 0 and 1 only: any request off is a mismatch')
  t.match(sampleRatio(1000, 500, 0.5, 0), { ok: true, pValue: 1 })
})

t.test('the ring sums the shares the requests were held to', async (t) => {
  const ring = new StatsRing(LATENCY_BUCKETS, 180)
  const at = (total: number, fresh: number, expected: number, variance: number): Snapshot => ({
    ...snap(0, 0),
    rollouts: { checkout: { decided: total, onNew: fresh, ratioTotal: total, ratioNew: fresh, ratioExpected: expected, ratioVariance: variance, targetPercent: 10 } }
  })
  ring.record(T0, at(0, 0, 0, 0))
  ring.record(T0 + SLOT_MS, at(1000, 300, 300, 500 * 0.09 + 500 * 0.25))
  t.match(ring.view(T0 + SLOT_MS, 60_000, '1m').rollouts.checkout?.sampleRatio, { n: 1000, observed: 0.3, expected: 0.3, pValue: 1, ok: true }, 'the mix, not the rollout\'s 10%')
  ring.record(T0 + 2 * SLOT_MS, at(1100, 400, 310, 500 * 0.09 + 500 * 0.25 + 100 * 0.09))
  t.match(ring.view(T0 + 2 * SLOT_MS, 60_000, '1m').rollouts.checkout?.sampleRatio, { n: 1100, ok: false }, '100 more at 10%, all on new')
  // a reset registry: the sums start again from zero with the counts
  ring.record(T0 + 3 * SLOT_MS, at(10, 1, 1, 0.9))
  t.match(ring.view(T0 + 3 * SLOT_MS, 5000, '5s').rollouts.checkout?.sampleRatio, { n: 10, expected: 0.1 })
})

t.test('windows', async (t) => {
  t.equal(parseWindow(undefined), 900_000)
  t.equal(parseWindow('15m'), 900_000)
  t.equal(parseWindow('90s'), 90_000)
  t.equal(parseWindow('1h'), 3_600_000)
  t.equal(parseWindow('2h'), undefined)
  t.equal(parseWindow('1s'), undefined)
  t.equal(parseWindow('15 minutes'), undefined)
})

t.test('the sampler reads prom-client counters', async (t) => {
  const m = createMetrics({ defaultMetrics: false })
  const stats = createStats(m.registry, LATENCY_BUCKETS, { rollouts: () => ['checkout'], ratio: (name) => m.ratioSums(name) })
  await stats.sample(T0)
  const route = m.route('orders')
  const r = m.rollout('checkout')
  m.state({ checkout: { percent: 10, rollback: null } }, 1)
  for (let i = 0; i < 40; i++) {
    m.request(route, i % 4 === 0 ? 'new' : 'legacy', 'GET', i === 0 ? 503 : 200, 0.02, undefined)
    m.decision(r, { backend: i % 4 === 0 ? 'new' : 'legacy', reason: 'percent', threshold: 1000 })
  }
  m.shadow.total.labels('orders', 'mismatch').inc(5)
  await stats.sample(T0 + SLOT_MS)
  const v = stats.view('1m', T0 + SLOT_MS)
  t.equal(v?.backends.legacy.rps.at(-1), 6)
  t.equal(v?.backends.new.rps.at(-1), 2)
  t.equal(v?.backends.new.errorRate.at(-1), 0.1)
  t.equal(v?.backends.new.p99Ms.at(-1), 24.85)
  t.equal(v?.shadow.mismatch.at(-1), 1)
  t.match(v?.rollouts.checkout, { share: [], target: [] })
  t.equal(v?.rollouts.checkout?.share.at(-1), 0.25)
  t.equal(v?.rollouts.checkout?.target.at(-1), 0.1)
  // 10 of 40 against 10%: chi-square 10, p 0.0016: odd, not yet past the 0.001 alarm
  t.same(v?.rollouts.checkout?.sampleRatio, { n: 40, observed: 0.25, expected: 0.1, pValue: 0.001565, ok: true })
  t.equal(stats.view('3h'), undefined)
})

t.test('GET /admin/stats on a real gateway', async (t) => {
  const legacy = await startBackend('legacy', t)
  const fresh = await startBackend('new', t)
  const gw = await startGatewayFromYaml(basicYaml(legacy.url, fresh.url, { top: TOKENS_YAML }), t)
  t.same((await call(gw.adminUrl, 'GET', '/admin/stats')).body, { error: 'DUALTRACK_ERR_UNAUTHORIZED', message: 'missing or unknown bearer token' })
  t.same((await call(gw.adminUrl, 'GET', '/admin/stats?window=1d', VIEWER)).body, {
    error: 'DUALTRACK_ERR_BAD_REQUEST', message: 'query.window: 1d is not a window from 5s to 60m (for example 15m)', field: 'window'
  })
  const first = await call(gw.adminUrl, 'GET', '/admin/stats?window=15m', OPERATOR)
  t.equal(first.status, 200)
  t.match(first.body, {
    window: '15m',
    stepMs: 5000,
    scope: 'local',
    t: Array,
    backends: { legacy: { rps: Array, errorRate: Array, p99Ms: Array }, new: { rps: Array, errorRate: Array, p99Ms: Array } },
    shadow: { match: Array, mismatch: Array, error: Array },
    rollouts: { checkout: { share: Array, target: Array, sampleRatio: { expected: 0.5 } } }
  })
  t.equal((first.body.t as number[]).length, 180)
  // traffic shows within a slot or two (the sampler reads every 5 s)
  let n = 0
  const body = await waitFor(async () => {
    for (let i = 0; i < 20; i++) {
      const res = await request(gw.url + '/api/orders', { headers: { 'x-user-id': `u${n++}` } })
      await res.body.dump()
    }
    const s = (await call(gw.adminUrl, 'GET', '/admin/stats?window=1m', VIEWER)).body as { backends: Record<string, { rps: (number | null)[] }>, rollouts: Record<string, { sampleRatio: { n: number } }> }
    return (s.backends.legacy?.rps.some((x) => (x ?? 0) > 0) && (s.rollouts.checkout?.sampleRatio.n ?? 0) > 0) ? s : undefined
  }, { what: 'requests in /admin/stats', timeoutMs: 60_000, intervalMs: 500 })
  t.equal((body as unknown as { t: number[] }).t.length, 12)
})
