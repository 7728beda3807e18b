// percent has two decimals, exactly (DESIGN.md §1, §3): 5.000000000000001 passed ajv's multipleOf
// with its float tolerance and was audited as a change; it is refused in YAML and the admin API alike
import t from 'tap'
import { parseConfig } from '../../src/config/index.js'
import { hasTwoDecimals } from '../../src/config/percent.js'
import { startBackend } from '../helpers/backend.js'
import { startGatewayFromYaml, basicYaml } from '../helpers/gateway.js'
import { call, OPERATOR, TOKENS_YAML } from '../helpers/admin.js'

t.test('hasTwoDecimals: every k/100 from 0 to 100 passes, near misses do not', async (t) => {
  let failed = 0
  for (let k = 0; k <= 10_000; k++) if (!hasTwoDecimals(Number((k / 100).toFixed(2)))) failed++
  t.equal(failed, 0, 'all 10,001 two-decimal percents pass')
  for (const bad of [5.000000000000001, 5.555, 0.001, 99.999, 1.005, 33.333333333333336, Number.NaN, Infinity]) t.notOk(hasTwoDecimals(bad), String(bad))
})

const yaml = (percent: string) => `
backends:
  legacy: { url: "http://127.0.0.1:1" }
  new: { url: "http://127.0.0.1:2" }
rollouts:
  checkout:
    percent: ${percent}
    cohortKey: [header:x-user-id]
    regions: { key: header:x-region, percent: { zhejiang: 20 } }
`

t.test('YAML: a percent that is not exactly two decimals is refused naming the field and line', async (t) => {
  t.throws(() => parseConfig(yaml('5.000000000000001'), 'g.yaml', {}), { message: /g\.yaml:7:\d+: rollouts\.checkout\.percent: must have at most two decimals/ })
  t.throws(() => parseConfig(yaml('5').replace('zhejiang: 20', 'zhejiang: 20.000000000000004'), 'g.yaml', {}), { message: /rollouts\.checkout\.regions\.percent\.zhejiang: must have at most two decimals/ })
  t.equal(parseConfig(yaml('5.55'), 'g.yaml', {}).rollouts.checkout?.percent, 5.55, '5.55 is fine')
})

t.test('admin API: refused with 400 naming the field, nothing changed, nothing audited', async (t) => {
  const legacy = await startBackend('legacy', t)
  const fresh = await startBackend('new', t)
  const gw = await startGatewayFromYaml(basicYaml(legacy.url, fresh.url, { top: TOKENS_YAML }), t)
  const before = await call(gw.adminUrl, 'GET', '/admin/audit', OPERATOR)
  const r = await call(gw.adminUrl, 'PUT', '/admin/rollouts/checkout', OPERATOR, undefined, '{"percent": 5.000000000000001}')
  t.equal(r.status, 400)
  t.same(r.body, { error: 'DUALTRACK_ERR_BAD_REQUEST', message: 'body.percent: must have at most two decimals', field: 'percent' })
  const reg = await call(gw.adminUrl, 'PUT', '/admin/rollouts/checkout', OPERATOR, undefined, '{"regions": {"zhejiang": 20.000000000000004}}')
  t.equal(reg.status, 400)
  t.equal(reg.body.field, 'regions.zhejiang')
  const state = await call(gw.adminUrl, 'GET', '/admin/state', OPERATOR)
  t.equal((state.body.rollouts as Record<string, { percent: number }>).checkout?.percent, 50, 'percent unchanged')
  const after = await call(gw.adminUrl, 'GET', '/admin/audit', OPERATOR)
  t.same(after.body, before.body, 'nothing audited')
  const ok = await call(gw.adminUrl, 'PUT', '/admin/rollouts/checkout', OPERATOR, { percent: 5.55 })
  t.equal(ok.status, 200, '5.55 is accepted')
})
