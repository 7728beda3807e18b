import t from 'tap'
import { request } from 'undici'
import { startBackend } from '../helpers/backend.js'
import { startGatewayFromYaml, basicYaml } from '../helpers/gateway.js'
import { call, OPERATOR, VIEWER, TOKENS_YAML } from '../helpers/admin.js'

/** parse the text format into { 'name{labels}': value } */
function parse (text: string): Map<string, number> {
  const out = new Map<string, number>()
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const i = line.lastIndexOf(' ')
    out.set(line.slice(0, i), Number(line.slice(i + 1)))
  }
  return out
}

async function scrape (adminUrl: string, token?: string) {
  const r = await request(adminUrl + '/metrics', { headers: token ? { authorization: `Bearer ${token}` } : {} })
  return { status: r.statusCode, type: r.headers['content-type'], text: await r.body.text() }
}

async function send (url: string, path: string, headers: Record<string, string>, method: 'GET' | 'POST' = 'GET') {
  const r = await request(url + path, { method, headers, body: method === 'POST' ? '{}' : undefined })
  await r.body.dump()
  return r.statusCode
}

t.test('exact counts after a known sequence of requests', async (t) => {
  const legacy = await startBackend('legacy', t)
  const fresh = await startBackend('new', t)
  const gw = await startGatewayFromYaml(basicYaml(legacy.url, fresh.url, { top: TOKENS_YAML }), t)
  legacy.handler = (req, res) => { res.writeHead(req.url?.includes('fail') ? 503 : 200); res.end('{}') }
  for (let i = 0; i < 3; i++) await send(gw.url, '/api/orders', { 'x-user-id': 'qa-user-1' })
  for (let i = 0; i < 2; i++) await send(gw.url, '/api/orders', { 'x-user-id': 'vip-42' }, 'POST')
  await send(gw.url, '/api/payments/fail', { 'x-user-id': 'vip-42' }, 'POST')
  await send(gw.url, '/api/orders', {})
  await send(gw.url, '/nowhere', { 'x-user-id': 'user-12345' })
  await legacy.close()
  await send(gw.url, '/api/payments', { 'x-user-id': 'vip-42' })

  const s = await scrape(gw.adminUrl)
  t.equal(s.status, 200, 'no token needed unless admin.metricsAuth')
  t.match(s.type, 'text/plain')
  const m = parse(s.text)
  const expect: [string, number][] = [
    ['dualtrack_requests_total{route="orders",backend="new",method="GET",code="200"}', 3],
    ['dualtrack_requests_total{route="orders",backend="legacy",method="POST",code="200"}', 2],
    ['dualtrack_requests_total{route="payments",backend="legacy",method="POST",code="503"}', 1],
    ['dualtrack_requests_total{route="orders",backend="legacy",method="GET",code="200"}', 1],
    ['dualtrack_requests_total{route="unmatched",backend="legacy",method="GET",code="200"}', 1],
    ['dualtrack_requests_total{route="payments",backend="legacy",method="GET",code="502"}', 1],
    ['dualtrack_upstream_errors_total{route="payments",backend="legacy",kind="connect"}', 1],
    ['dualtrack_upstream_errors_total{route="orders",backend="legacy",kind="timeout"}', 0],
    ['dualtrack_routing_decisions_total{rollout="checkout",backend="new",reason="force"}', 3],
    ['dualtrack_routing_decisions_total{rollout="checkout",backend="legacy",reason="force"}', 4],
    ['dualtrack_routing_decisions_total{rollout="checkout",backend="legacy",reason="unkeyed"}', 1],
    ['dualtrack_routing_decisions_total{rollout="none",backend="legacy",reason="default"}', 1],
    ['dualtrack_request_duration_seconds_count{route="orders",backend="new"}', 3],
    ['dualtrack_rollout_percent{rollout="checkout"}', 50],
    ['dualtrack_rollback_active{rollout="checkout"}', 0],
    ['dualtrack_state_store_up{store="file"}', 1],
    ['dualtrack_config_reloads_total{result="failure"}', 0],
    ['dualtrack_sample_ratio_expected{rollout="checkout"}', 0.5],
    ['dualtrack_sample_ratio_window_requests{rollout="checkout"}', 1],
    ['dualtrack_sample_ratio_observed{rollout="checkout"}', 0]
  ]
  for (const [k, v] of expect) t.equal(m.get(k), v, k)
  t.ok(m.has('process_resident_memory_bytes'), 'default process metrics')
  t.ok(m.get('dualtrack_state_version') as number >= 1)
  t.notMatch(s.text, /user-12345|vip-42|qa-user-1|nowhere/, 'no user id or raw path in any label')

  await call(gw.adminUrl, 'POST', '/admin/rollback', OPERATOR, { reason: 'test' })
  const after = parse((await scrape(gw.adminUrl)).text)
  t.equal(after.get('dualtrack_rollback_active{rollout="checkout"}'), 1)
  t.equal(after.get('dualtrack_state_version'), (m.get('dualtrack_state_version') as number) + 1)
  void VIEWER
})

t.test('the sample-ratio gauge reacts to a client that sends no key', async (t) => {
  const legacy = await startBackend('legacy', t)
  const fresh = await startBackend('new', t)
  const gw = await startGatewayFromYaml(basicYaml(legacy.url, fresh.url, { top: TOKENS_YAML }), t)
  for (let i = 0; i < 400; i++) await send(gw.url, '/api/orders', { 'x-user-id': `user-${i}` })
  const healthy = parse((await scrape(gw.adminUrl)).text).get('dualtrack_sample_ratio_observed{rollout="checkout"}') as number
  t.ok(Math.abs(healthy - 0.5) < 0.1, `400 keyed users: observed ${healthy} against 0.5`)
  // a mobile release that forgot its x-user-id header
  for (let i = 0; i < 400; i++) await send(gw.url, '/api/orders', {})
  const m = parse((await scrape(gw.adminUrl)).text)
  const broken = m.get('dualtrack_sample_ratio_observed{rollout="checkout"}') as number
  const n = m.get('dualtrack_sample_ratio_window_requests{rollout="checkout"}') as number
  t.equal(n, 800)
  t.ok(broken < 0.3, `observed falls to ${broken}`)
  // the alert's binomial bound: |observed - expected| > 4 * sqrt(p(1-p)/n)
  t.ok(Math.abs(broken - 0.5) > 4 * Math.sqrt(0.25 / n), 'beyond statistical noise')
  t.ok(Math.abs(healthy - 0.5) <= 4 * Math.sqrt(0.25 / 400), 'the healthy window was within it')
})

t.test('admin.metricsAuth puts /metrics behind a token', async (t) => {
  const legacy = await startBackend('legacy', t)
  const fresh = await startBackend('new', t)
  const gw = await startGatewayFromYaml(basicYaml(legacy.url, fresh.url, { top: TOKENS_YAML.replace('admin:', 'admin:\n  metricsAuth: true') }), t)
  t.equal((await scrape(gw.adminUrl)).status, 401)
  t.equal((await scrape(gw.adminUrl, VIEWER)).status, 200)
})

t.test('build info, the plan step and buckets that bracket guard thresholds', async (t) => {
  const legacy = await startBackend('legacy', t)
  const fresh = await startBackend('new', t)
  const gw = await startGatewayFromYaml(basicYaml(legacy.url, fresh.url, {
    top: TOKENS_YAML,
    rollout: '    guard: { window: 60s, minRequests: 200, maxErrorRate: 0.5 }\n    plan: { steps: [5, 10, 25], hold: 10m }'
  }), t)
  await send(gw.url, '/api/orders', { 'x-user-id': 'qa-user-1' })
  const m = parse((await scrape(gw.adminUrl)).text)
  const version = (JSON.parse((await import('node:fs')).readFileSync('package.json', 'utf8')) as { version: string }).version
  t.equal(m.get(`dualtrack_build_info{version="${version}",node="${process.version}"}`), 1, 'build info names both versions')
  t.ok([...m.keys()].some((k) => /^dualtrack_plan_step\{rollout="checkout"\}$/.test(k)), 'the plan step of a rollout with a plan is exported')
  t.equal(m.get('dualtrack_plan_step{rollout="checkout"}'), (gw.app.state.doc.rollouts.checkout?.plan?.step ?? -1) + 1, 'counted from 1, 0 before the first step')
  for (const le of ['1.5', '2']) t.ok(m.has(`dualtrack_request_duration_seconds_bucket{le="${le}",route="orders",backend="new"}`), `a bucket at ${le} s`)
})
