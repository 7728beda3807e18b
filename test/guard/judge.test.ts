// the guard's judge, pure: injected counts and time, synthetic streams (src/guard/simulate.ts)
import t from 'tap'
import type { GuardConfig } from '../../src/config/index.js'
import { Counts, judge, simulateHold, seeded, samplesAt, sampleRatioPValue, lowerBound, upperBound, type SimSide } from '../../src/guard/index.js'

// 3,000 simulated holds: well within tap's 120 s per file on a quiet machine, not on a busy one
t.setTimeout(300_000)

const GUARD: GuardConfig = { windowMs: 10_000, minRequests: 50, maxErrorRateDelta: 0.01, maxP99Ratio: 1.5, confidence: 0.99, scope: 'replica', rollbackMode: 'drain' }
const HOLD_MS = 60_000
const side = (rps: number, errorRate: number, medianMs = 40, sigma = 0.5): SimSide => ({ rps, errorRate, medianMs, sigma })

function counts (legacy: [number, number, number], fresh: [number, number, number]): Counts {
  // [requests, errors, latency ms of every request]
  const c = new Counts()
  for (const [s, [n, e, ms]] of [[c.legacy, legacy], [c.new, fresh]] as const) {
    for (let i = 0; i < n; i++) s.record(ms, i < e)
  }
  return c
}

t.test('empty windows: inconclusive, every figure a finite number, no division by zero', async (t) => {
  const j = judge({ ...GUARD, maxErrorRate: 0.05, maxP99Ms: 500 }, new Counts(), { alpha: 0.01 })
  t.equal(j.verdict, 'inconclusive')
  t.same(j.backends, { legacy: { requests: 0, errors: 0, errorRate: 0, p99Ms: 0 }, new: { requests: 0, errors: 0, errorRate: 0, p99Ms: 0 } })
  t.match(j.errorRate, { delta: 0, pValue: 1 })
  t.equal(j.latency?.ratio, null, 'no ratio against an empty legacy')
  const text = JSON.stringify(j)
  t.notMatch(text, /NaN|Infinity/)
  t.match(j.reasons[0], 'inconclusive, 0 of 50 requests on new, 0 of 50 requests on legacy')
  for (const p of Object.values(j.pValues)) t.ok(p !== undefined && p >= 0 && p <= 1)
})

t.test('too little data is inconclusive, however bad it looks', async (t) => {
  const j = judge(GUARD, counts([1000, 0, 20], [49, 49, 20]), { alpha: 0.01 })
  t.equal(j.verdict, 'inconclusive')
  t.match(j.reasons[0], 'inconclusive, 49 of 50 requests on new')
  t.match(j.reasons[1], /^below minRequests, not acted on: new error rate 100\.00%/)
})

t.test('a clear regression on enough data is a breach, with its numbers and p-value', async (t) => {
  const j = judge(GUARD, counts([2000, 20, 20], [400, 60, 20]), { alpha: 0.01 })
  t.equal(j.verdict, 'breach')
  t.ok((j.errorRate?.lower ?? 0) > 0.01, `lower bound ${j.errorRate?.lower} beyond the margin`)
  t.ok((j.errorRate?.pValue ?? 1) <= 0.01 / 2, 'the adjusted p-value says so too (2 checks)')
  t.match(j.numbers, { newRequests: 400, legacyRequests: 2000, newErrors: 60, legacyErrors: 20 })
  const ok = judge(GUARD, counts([2000, 20, 20], [400, 5, 20]), { alpha: 0.01 })
  t.equal(ok.verdict, 'healthy')
  t.match(ok.reasons[0], /^healthy over 400 new \/ 2000 legacy requests/)
})

t.test('the confidence sequences cover: bounds bracket the observed rate, and tighten with data', async (t) => {
  t.equal(lowerBound(0, 100, 0.01), 0)
  t.equal(upperBound(100, 100, 0.01), 1)
  const small = [lowerBound(5, 100, 0.01), upperBound(5, 100, 0.01)] as const
  const large = [lowerBound(500, 10_000, 0.01), upperBound(500, 10_000, 0.01)] as const
  t.ok(small[0] < 0.05 && small[1] > 0.05 && large[0] < 0.05 && large[1] > 0.05)
  t.ok(large[1] - large[0] < (small[1] - small[0]) / 5)
})

t.test('samples: staggered window tests and the hold; a resume is a floor', async (t) => {
  const s = samplesAt(25_000, 10_000, 0.01, 0, 12_000, 60_000)
  t.same(s.open.map((x) => x.id), ['w10000:10000', 'w10000:20000', 's:12000'])
  t.equal(s.window.start, 10_000, 'the older window test is judged (one to two windows of traffic)')
  t.equal(s.hold?.start, 12_000)
  t.equal(s.holdAlpha, 0.005)
  t.equal(s.windowAlpha, 0.005 / 8, 'half of alpha over the hold\'s window tests')
  const r = samplesAt(25_000, 10_000, 0.01, 23_000, undefined, undefined)
  t.same(r.open.map((x) => x.id), ['w10000:23000'], 'nothing from before the resume')
  t.equal(r.windowAlpha, 0.01 / 62, 'no plan: a 10-minute hold')
})

const AA_HOLDS = 1000
for (const rate of [0.005, 0.02, 0.1]) {
  t.test(`A/A at ${rate * 100}% errors: at most 1 - confidence of ${AA_HOLDS} holds breach`, async (t) => {
    const random = seeded(Math.round(rate * 1e6))
    let breaches = 0
    let healthy = 0
    for (let i = 0; i < AA_HOLDS; i++) {
      const r = simulateHold({ guard: GUARD, holdMs: HOLD_MS, legacy: side(40, rate), new: side(10, rate), random })
      if (r.breachAtMs !== null) breaches++
      if (r.holdVerdict === 'healthy') healthy++
    }
    t.comment(`A/A ${rate * 100}%: ${breaches} false breaches in ${AA_HOLDS} holds; ${healthy} judged healthy at the end`)
    t.ok(breaches <= AA_HOLDS * (1 - GUARD.confidence), `${breaches} <= ${AA_HOLDS * (1 - GUARD.confidence)}`)
    t.ok(healthy > AA_HOLDS * 0.9, 'and the identical system is judged healthy, so a plan advances')
  })
}

t.test('a +5-point error regression is caught within the hold', async (t) => {
  const random = seeded(5)
  // 3,000 requests on new over the hold (bench/guard-sim.js has the delays at other rates)
  for (let i = 0; i < 20; i++) {
    const r = simulateHold({ guard: GUARD, holdMs: HOLD_MS, legacy: side(200, 0.01), new: side(50, 0.06), random })
    t.not(r.breachAtMs, null, `run ${i}: caught after ${r.newRequests} new requests`)
  }
})

t.test('a p99 regression is caught within the hold', async (t) => {
  const random = seeded(99)
  for (let i = 0; i < 20; i++) {
    const r = simulateHold({ guard: GUARD, holdMs: HOLD_MS, legacy: side(40, 0.01), new: side(10, 0.01, 40 * 3), random })
    t.not(r.breachAtMs, null, `run ${i}: caught after ${r.newRequests} new requests`)
  }
})

t.test('the sample-ratio chi-square: a minimum count, a deviation floor, a small p on a real drift', async (t) => {
  t.equal(sampleRatioPValue(100, 10, 5), undefined, 'under 10 expected on new: no verdict')
  t.equal(sampleRatioPValue(1_000_000, 50_050, 50_000), 1, 'within 0.1 point of the target: never a mismatch')
  const drift = sampleRatioPValue(10_000, 600, 500) as number
  t.ok(drift < 0.001, `6% against 5% over 10,000: p = ${drift}`)
  const fine = sampleRatioPValue(10_000, 510, 500) as number
  t.ok(fine > 0.1, `5.1% against 5%: p = ${fine}`)
})

t.test('counts travel to Redis as deltas and come back whole', async (t) => {
  const a = counts([10, 2, 30], [5, 1, 300])
  const first = a.deltaFields(undefined)
  t.match(first, { 'l.r': 10, 'l.e': 2, 'n.r': 5, 'n.e': 1 })
  const pushed = a.copy()
  t.equal(a.deltaFields(pushed), undefined, 'nothing new: nothing to send')
  a.new.record(300, true)
  t.same(a.deltaFields(pushed), { 'n.r': 1, 'n.e': 1, [`n.${Object.keys(first ?? {}).find((k) => k.startsWith('n.') && k !== 'n.r' && k !== 'n.e')?.slice(2)}`]: 1 })
  // what HGETALL answers: strings, and fields this version does not know are ignored
  const back = Counts.fromFields({ ...Object.fromEntries(Object.entries(a.deltaFields(undefined) ?? {}).map(([k, v]) => [k, String(v)])), 'x.y': '3', 'n.999': '4' })
  t.same([back.legacy.requests, back.legacy.errors, back.new.requests, back.new.errors], [10, 2, 6, 2])
  t.same(Array.from(back.new.hist), Array.from(a.new.hist))
})
