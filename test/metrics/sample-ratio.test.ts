// the sample-ratio check's chi-square p-values, per rollout and per region, as /metrics shows them
import t from 'tap'
import { request } from 'undici'
import { startBackend } from '../helpers/backend.js'
import { startGatewayFromYaml, basicYaml } from '../helpers/gateway.js'
import { call, OPERATOR, TOKENS_YAML } from '../helpers/admin.js'

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
