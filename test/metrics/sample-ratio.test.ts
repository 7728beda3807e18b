// the sample-ratio check's chi-square p-values, per rollout and per region, as /metrics shows them;
// and its accumulator, pure, with injected time and counts
import t from 'tap'
import { request } from 'undici'
import { startBackend } from '../helpers/backend.js'
import { startGatewayFromYaml, basicYaml } from '../helpers/gateway.js'
import { call, OPERATOR, TOKENS_YAML } from '../helpers/admin.js'
import { countRatio, sumRatio, SAMPLE_WINDOW_S, type RatioWindow } from '../../src/metrics/index.js'
import { sampleRatioPValue } from '../../src/guard/index.js'

const ratioWindowOf = (): RatioWindow => ({
  slotsTotal: new Uint32Array(SAMPLE_WINDOW_S),
  slotsNew: new Uint32Array(SAMPLE_WINDOW_S),
  slotsExpected: new Float64Array(SAMPLE_WINDOW_S),
  slotsVariance: new Float64Array(SAMPLE_WINDOW_S),
  slotSecond: new Float64Array(SAMPLE_WINDOW_S)
})

function value (text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(series + ' '))
  return line === undefined ? undefined : Number(line.slice(series.length + 1))
}

t.test('dualtrack_sample_ratio_p_value per rollout and per region', async (t) => {
  const legacy = await startBackend('legacy', t)
  const fresh = await startBackend('new', t)
  const gw = await startGatewayFromYaml(basicYaml(legacy.url, fresh.url, { top: TOKENS_YAML }), t)
  t.equal((await call(gw.adminUrl, 'PUT', '/admin/rollouts/checkout', OPERATOR, { regions: { zhejiang: 50 } })).status, 200)
  const metrics = async () => (await (await request(gw.adminUrl + '/metrics')).body.text())
  t.equal(value(await metrics(), 'dualtrack_sample_ratio_p_value{rollout="checkout",region=""}'), undefined, 'no p-value under 10 expected a cell')
  for (let i = 0; i < 60; i++) {
    for (const headers of [{ 'x-user-id': `p${i}` }, { 'x-user-id': `z${i}`, 'x-region': 'ZheJiang' }]) {
      const r = await request(gw.url + '/api/orders', { headers })
      await r.body.dump()
    }
  }
  const text = await metrics()
  const all = value(text, 'dualtrack_sample_ratio_p_value{rollout="checkout",region=""}')
  const zj = value(text, 'dualtrack_sample_ratio_p_value{rollout="checkout",region="zhejiang"}')
  t.ok(all !== undefined && all > 0.001 && all <= 1, `a fair 50% split over 60 users is no mismatch: p = ${all}`)
  t.ok(zj !== undefined && zj > 0.001 && zj <= 1, `nor in the region (its name lowercased): p = ${zj}`)
  t.notMatch(text, /region="guangdong"/, 'a region at 100% can never be tested: no series')
})

t.test('the accumulator: each request at its own share, summed with its variance over 60 one-second slots', async (t) => {
  const T = Date.UTC(2026, 10, 30, 12, 0, 0)
  const w = ratioWindowOf()
  // 1,000 requests at the rollout's 10% (100 on new) and 1,000 in a 50% segment
  const fill = (fresh: number, n: number, p: number, now: number) => { for (let i = 0; i < n; i++) countRatio(w, i < fresh ? 'new' : 'legacy', p, now) }
  fill(100, 1000, 0.1, T)
  fill(520, 1000, 0.5, T + 30_000)
  const s = sumRatio(w, T + 30_000)
  t.equal(s.total, 2000)
  t.equal(s.fresh, 620)
  t.ok(Math.abs(s.expected - 600) < 1e-6, `expected on new: ${s.expected}`)
  t.ok(Math.abs(s.variance - (1000 * 0.09 + 1000 * 0.25)) < 1e-6, `variance: ${s.variance}`)
  const fair = sampleRatioPValue(s.total, s.fresh, s.expected, s.variance) as number
  t.ok(fair > 0.1, `20 over in 2,000 against 600 is chance: p = ${fair}`)
  t.ok((sampleRatioPValue(s.total, s.fresh, s.total * 0.1) as number) < 1e-12, 'held to the rollout\'s share alone it would be an alarm')
  // the segment's users on new at 70% instead of 50%: a wrong split
  const bad = ratioWindowOf()
  for (let i = 0; i < 1000; i++) countRatio(bad, i < 100 ? 'new' : 'legacy', 0.1, T)
  for (let i = 0; i < 1000; i++) countRatio(bad, i < 700 ? 'new' : 'legacy', 0.5, T)
  const b = sumRatio(bad, T)
  t.ok((sampleRatioPValue(b.total, b.fresh, b.expected, b.variance) as number) < 1e-6, 'a segment off its share is a mismatch')
  // the window slides: a minute later the first slot's requests are gone
  const later = sumRatio(w, T + 60_000)
  t.equal(later.total, 1000, 'requests older than 60 s drop out')
  t.ok(Math.abs(later.expected - 500) < 1e-6)
})

t.test('the variance of each request, not of the mean share: shares of 0% and 100% cannot drift by chance', async (t) => {
  // same share everywhere: the variance left out is Pearson's chi-square of two cells
  t.equal(sampleRatioPValue(1000, 320, 250), sampleRatioPValue(1000, 320, 250, 1000 * 0.25 * 0.75))
  // a rollout at 0% with a segment at 100% for half its users: 5 segment users landed on legacy
  const pooled = sampleRatioPValue(1000, 495, 500) as number
  t.ok(pooled > 0.5, `the mean share alone (0.5) sees nothing: p = ${pooled}`)
  t.equal(sampleRatioPValue(1000, 495, 500, 0), 0, 'with every share 0 or 1 any request off its side is a mismatch')
  t.equal(sampleRatioPValue(1000, 500, 500, 0), 1, 'and none off is none')
  t.equal(sampleRatioPValue(1000, 100, 5, 4), undefined, 'under 10 expected in a cell: no verdict')
})
