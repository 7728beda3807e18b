// the sample-ratio check covers percent segments: each request is held to the share that decided
// it (the rollout's 10%, or its segment's 50%), so a fair mixed split raises no alarm, and a skewed
// one does; force and fixed-backend segments stay outside. A real gateway, real backends
import t from 'tap'
import { request, Agent } from 'undici'
import { startBackend } from '../helpers/backend.js'
import { startGatewayFromYaml } from '../helpers/gateway.js'
import { call, VIEWER, OPERATOR, TOKENS_YAML } from '../helpers/admin.js'
import { waitFor } from '../helpers/wait.js'
import { bucketOf, encodeSalt } from '../../src/routing/index.js'
import { sampleRatioPValue } from '../../src/guard/index.js'

const USERS = 600
const yaml = (legacy: string, fresh: string) => `
backends:
  legacy: { url: "${legacy}", timeoutMs: 5000, connectTimeoutMs: 1000 }
  new: { url: "${fresh}", timeoutMs: 5000, connectTimeoutMs: 1000 }
rollouts:
  checkout:
    percent: 10
    salt: srm-salt
    cohortKey: [header:x-user-id]
    force: { new: [qa-user-1], legacy: [vip-42] }
    attributes: { tier: [header:x-user-tier] }
    segments:
      - { name: staff, when: [{ attribute: tier, op: IN, values: [staff] }], backend: new }
      - { name: beta, when: [{ attribute: tier, op: IN, values: [beta] }], percent: 50 }
routes:
  - { name: orders, match: { prefix: /api/orders }, rollout: checkout }
${TOKENS_YAML}
`

function series (text: string, name: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(name + ' '))
  return line === undefined ? undefined : Number(line.slice(name.length + 1))
}

interface SampleRatioView { n: number, observed: number | null, expected: number, pValue: number | null, ok: boolean | null }

t.test('a rollout at 10% with a 50% segment for half its users: right split, no alarm; a skewed one, an alarm', async (t) => {
  const legacy = await startBackend('legacy', t)
  const fresh = await startBackend('new', t)
  const gw = await startGatewayFromYaml(yaml(legacy.url, fresh.url), t)
  const agent = new Agent({ connections: 16 })
  t.teardown(() => agent.close())
  const send = async (headers: Record<string, string>) => {
    const res = await request(gw.url + '/api/orders/7', { headers, dispatcher: agent })
    await res.body.dump()
    return { backend: res.headers['x-dualtrack-backend'] as string, reason: res.headers['x-dualtrack-reason'] as string }
  }
  const metrics = async () => (await (await request(gw.adminUrl + '/metrics')).body.text())
  const stats = async () => ((await call(gw.adminUrl, 'GET', '/admin/stats?window=1m', VIEWER)).body as { rollouts: Record<string, { sampleRatio: SampleRatioView }> }).rollouts.checkout?.sampleRatio

  // every other user is in the beta segment: half the requests held to 50%, half to 10%
  const headersOf = (i: number): Record<string, string> => i % 2 === 0 ? { 'x-user-id': `u${i}`, 'x-user-tier': 'beta' } : { 'x-user-id': `u${i}` }
  let onNew = 0
  for (let i = 0; i < USERS; i += 20) {
    const batch = await Promise.all(Array.from({ length: 20 }, (_, k) => send(headersOf(i + k))))
    for (const [k, r] of batch.entries()) {
      t.equal(r.reason, (i + k) % 2 === 0 ? 'segment' : 'percent')
      if (r.backend === 'new') onNew++
    }
  }
  const salt = encodeSalt('srm-salt')
  const want = Array.from({ length: USERS }, (_, i) => bucketOf(salt, `u${i}`) < (i % 2 === 0 ? 5000 : 1000) ? 1 : 0).reduce<number>((a, b) => a + b, 0)
  t.equal(onNew, want, 'each user on the side its threshold puts it')

  const expectedOnNew = USERS / 2 * 0.5 + USERS / 2 * 0.1
  const variance = USERS / 2 * 0.25 + USERS / 2 * 0.09
  let text = await metrics()
  t.equal(series(text, 'dualtrack_sample_ratio_window_requests{rollout="checkout"}'), USERS, 'percent-segment requests are in the check')
  t.ok(Math.abs((series(text, 'dualtrack_sample_ratio_expected{rollout="checkout"}') as number) - 0.3) < 1e-9, 'the expected share is the mix: (0.5 + 0.1) / 2, not the rollout\'s 0.1')
  t.equal(series(text, 'dualtrack_sample_ratio_observed{rollout="checkout"}'), onNew / USERS)
  const p = series(text, 'dualtrack_sample_ratio_p_value{rollout="checkout",region=""}') as number
  t.ok(p > 0.001, `the fair split is no mismatch: ${onNew} of ${USERS} on new against ${expectedOnNew} expected, p = ${p}`)
  t.ok(Math.abs(p - (sampleRatioPValue(USERS, onNew, expectedOnNew, variance) as number)) < 1e-9, 'the p-value of the per-request shares and their variance')
  t.ok((sampleRatioPValue(USERS, onNew, USERS * 0.1) as number) < 1e-6, 'held to the rollout\'s 10% alone, the same fair split would page someone')

  // force and fixed-backend segments are decided by no percentage: outside the check
  for (let i = 0; i < 40; i += 4) {
    await Promise.all([send({ 'x-user-id': 'qa-user-1', 'x-user-tier': 'beta' }), send({ 'x-user-id': 'vip-42' }), send({ 'x-user-id': `s${i}`, 'x-user-tier': 'staff' }), send({ 'x-user-tier': 'staff' })])
  }
  text = await metrics()
  t.equal(series(text, 'dualtrack_sample_ratio_window_requests{rollout="checkout"}'), USERS, 'force and fixed-backend segments add nothing')
  t.equal(series(text, 'dualtrack_sample_ratio_p_value{rollout="checkout",region=""}'), p)
  t.match(text, /dualtrack_routing_decisions_total\{rollout="checkout",backend="new",reason="segment"\} \d+/)

  // the console's /admin/stats says the same (its sampler reads every 5 s)
  const fair = await waitFor(async () => { const s = await stats(); return s?.n === USERS ? s : undefined }, { what: `/admin/stats with ${USERS} requests in the sample-ratio check`, timeoutMs: 60_000, intervalMs: 250 })
  t.equal(fair.expected, 0.3, '/admin/stats: the expected share is the mix')
  t.equal(fair.ok, true, `/admin/stats: no mismatch (p = ${fair.pValue})`)

  // one beta user on new sends 150 more requests (a constant key, a retry storm): the split is off
  const heavy = Array.from({ length: USERS }, (_, i) => i).find((i) => i % 2 === 0 && bucketOf(salt, `u${i}`) < 5000) as number
  for (let i = 0; i < 150; i += 15) await Promise.all(Array.from({ length: 15 }, () => send(headersOf(heavy))))
  text = await metrics()
  const skewed = series(text, 'dualtrack_sample_ratio_p_value{rollout="checkout",region=""}') as number
  t.equal(series(text, 'dualtrack_sample_ratio_window_requests{rollout="checkout"}'), USERS + 150)
  t.ok(skewed < 0.001, `${onNew + 150} of ${USERS + 150} on new against ${expectedOnNew + 75} expected: p = ${skewed}`)
  const off = await waitFor(async () => { const s = await stats(); return s?.n === USERS + 150 ? s : undefined }, { what: '/admin/stats with the skewed requests', timeoutMs: 60_000, intervalMs: 250 })
  t.equal(off.ok, false, `/admin/stats: a mismatch (p = ${off.pValue})`)
})

t.test('a ramp inside the window is no mismatch: requests before it are held to the old share', async (t) => {
  const legacy = await startBackend('legacy', t)
  const fresh = await startBackend('new', t)
  const gw = await startGatewayFromYaml(yaml(legacy.url, fresh.url), t)
  const agent = new Agent({ connections: 16 })
  t.teardown(() => agent.close())
  const send = async (user: string) => {
    const res = await request(gw.url + '/api/orders/7', { headers: { 'x-user-id': user }, dispatcher: agent })
    await res.body.dump()
    return res.headers['x-dualtrack-backend'] === 'new' ? 1 : 0
  }
  const burst = async (from: number) => {
    let n = 0
    for (let i = from; i < from + 400; i += 20) n += (await Promise.all(Array.from({ length: 20 }, (_, k) => send(`r${i + k}`)))).reduce<number>((a, b) => a + b, 0)
    return n
  }
  const before = await burst(0)
  const put = await call(gw.adminUrl, 'PUT', '/admin/rollouts/checkout', OPERATOR, { percent: 50 })
  t.equal(put.status, 200)
  const after = await burst(400)
  const text = await (await request(gw.adminUrl + '/metrics')).body.text()
  t.equal(series(text, 'dualtrack_sample_ratio_window_requests{rollout="checkout"}'), 800)
  t.ok(Math.abs((series(text, 'dualtrack_sample_ratio_expected{rollout="checkout"}') as number) - 0.3) < 1e-9, 'half held to 10%, half to 50%')
  const p = series(text, 'dualtrack_sample_ratio_p_value{rollout="checkout",region=""}') as number
  t.ok(p > 0.001, `${before} + ${after} of 800 on new across the ramp: p = ${p}`)
  t.ok((sampleRatioPValue(800, before + after, 800 * 0.5) as number) < 1e-6, 'held to the new 50% alone, the same traffic would page someone')
})
