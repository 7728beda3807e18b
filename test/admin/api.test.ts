import t, { type Test } from 'tap'
import { request } from 'undici'
import { startBackend } from '../helpers/backend.js'
import { startGatewayFromYaml, basicYaml } from '../helpers/gateway.js'
import { call, OPERATOR, VIEWER, TOKENS_YAML } from '../helpers/admin.js'
import { bucketOf, encodeSalt } from '../../src/routing/index.js'

async function setup (t: Test, percent = 50) {
  const legacy = await startBackend('legacy', t)
  const fresh = await startBackend('new', t)
  const yaml = basicYaml(legacy.url, fresh.url, { top: TOKENS_YAML }).replace('percent: 50', `percent: ${percent}`)
  const gw = await startGatewayFromYaml(yaml, t)
  return { legacy, fresh, gw, a: gw.adminUrl }
}

async function route (url: string, user: string) {
  const res = await request(url + '/api/orders', { headers: { 'x-user-id': user } })
  await res.body.dump()
  return { backend: res.headers['x-dualtrack-backend'], reason: res.headers['x-dualtrack-reason'] }
}

t.test('GET /admin/state and the roles', async (t) => {
  const { a } = await setup(t)
  const s = await call(a, 'GET', '/admin/state', VIEWER)
  t.equal(s.status, 200)
  t.match(s.body, {
    version: Number,
    rollouts: { checkout: { percent: 50, regions: { guangdong: 100, zhejiang: 0 }, rollback: null, updatedBy: 'yaml', source: 'yaml', updatedAt: String } },
    store: { store: 'file', up: true, pending: 0 }
  })
  t.same((await call(a, 'GET', '/admin/state')).body, { error: 'DUALTRACK_ERR_UNAUTHORIZED', message: 'missing or unknown bearer token' })
  t.equal((await call(a, 'GET', '/admin/state')).status, 401)
  t.equal((await call(a, 'GET', '/admin/state', 'wrong-token-xxxxxxxxxxxx')).status, 401)
  const forbidden = await call(a, 'PUT', '/admin/rollouts/checkout', VIEWER, { percent: 10 })
  t.equal(forbidden.status, 403)
  t.same(forbidden.body, { error: 'DUALTRACK_ERR_FORBIDDEN', message: 'token grafana has role viewer; this needs operator' })
  t.same((await call(a, 'GET', '/admin/state', VIEWER)).body, s.body, 'refusals changed nothing')
  t.same((await call(a, 'GET', '/healthz')).body, { status: 'ok' })
  t.match((await call(a, 'GET', '/readyz')).body, { status: 'ready', store: 'file', storeUp: true })
})

t.test('PUT /admin/rollouts/:name: success and every refusal', async (t) => {
  const { a, gw } = await setup(t)
  const before = (await call(a, 'GET', '/admin/state', VIEWER)).body
  const bad: [unknown, number, string, string?][] = [
    [{ percent: 101 }, 400, 'body.percent: must be <= 100', 'percent'],
    [{ percent: -1 }, 400, 'body.percent: must be >= 0', 'percent'],
    [{ percent: 'abc' }, 400, 'body.percent: must be number', 'percent'],
    [{ percent: 5.555 }, 400, 'body.percent: must have at most two decimals', 'percent'],
    [{}, 400, 'body: must NOT have fewer than 1 properties', 'body'],
    [{ percnt: 5 }, 400, 'body.percnt: unknown key (allowed: percent, regions, segments, reason)', 'percnt'],
    [{ regions: { zhejiang: 120 } }, 400, 'body.regions.zhejiang: must be <= 100', 'regions.zhejiang']
  ]
  for (const [body, status, message, field] of bad) {
    const r = await call(a, 'PUT', '/admin/rollouts/checkout', OPERATOR, body)
    t.equal(r.status, status, JSON.stringify(body))
    t.same(r.body, { error: 'DUALTRACK_ERR_BAD_REQUEST', message, field }, JSON.stringify(body))
  }
  const missing = await call(a, 'PUT', '/admin/rollouts/checkout', OPERATOR, undefined, '')
  t.equal(missing.status, 400, 'missing body')
  t.equal(missing.body.error, 'DUALTRACK_ERR_BAD_REQUEST')
  const junk = await call(a, 'PUT', '/admin/rollouts/checkout', OPERATOR, undefined, '{"percent": 1')
  t.equal(junk.status, 400, 'broken JSON')
  const huge = await call(a, 'PUT', '/admin/rollouts/checkout', OPERATOR, undefined, JSON.stringify({ percent: 5, reason: 'x'.repeat(2 * 1024 * 1024) }))
  t.equal(huge.status, 413)
  t.same(huge.body, { error: 'DUALTRACK_ERR_ADMIN_BODY_TOO_LARGE', message: 'admin request body is larger than 64 KiB' })
  const unknown = await call(a, 'PUT', '/admin/rollouts/nope', OPERATOR, { percent: 5 })
  t.equal(unknown.status, 404)
  t.same(unknown.body, { error: 'DUALTRACK_ERR_UNKNOWN_ROLLOUT', message: 'unknown rollout nope' })
  t.same((await call(a, 'GET', '/admin/state', VIEWER)).body, before, 'every refusal changed nothing')

  const ok = await call(a, 'PUT', '/admin/rollouts/checkout', OPERATOR, { percent: 5.55, regions: { zhejiang: 50, guangdong: null } })
  t.equal(ok.status, 200)
  t.match(ok.body, { propagated: true, rollouts: { checkout: { percent: 5.55, regions: { zhejiang: 50 }, updatedBy: 'oncall', source: 'admin' } } })
  t.notOk('guangdong' in ((ok.body.rollouts as Record<string, { regions: object }>).checkout?.regions ?? {}), 'a region set to null is removed')
  t.equal(ok.body.version, (before.version as number) + 1)
  t.equal(gw.app.dataPlane.router.rollouts.get('checkout')?.threshold, 555, 'the request path has it before the answer')
})

t.test('ramp 5 -> 10 through the API: nobody on new moves back', async (t) => {
  const { a, gw } = await setup(t, 5)
  const users = Array.from({ length: 300 }, (_, i) => `ramp-${i}`)
  const before = await Promise.all(users.map((u) => route(gw.url, u)))
  t.equal((await call(a, 'PUT', '/admin/rollouts/checkout', OPERATOR, { percent: 10 })).status, 200)
  const after = await Promise.all(users.map((u) => route(gw.url, u)))
  const salt = encodeSalt('test-salt')
  let onNew = 0
  users.forEach((u, i) => {
    if (before[i]?.backend === 'new') {
      onNew++
      t.equal(after[i]?.backend, 'new', `${u} stays on new`)
    }
    t.equal(after[i]?.backend, bucketOf(salt, u) < 1000 ? 'new' : 'legacy')
  })
  t.ok(onNew > 0, `${onNew} users were on new at 5%`)
})

t.test('rollback and resume: applied before the answer returns', async (t) => {
  const { a, gw, fresh } = await setup(t, 100)
  t.equal((await route(gw.url, 'u1')).backend, 'new')
  const rb = await call(a, 'POST', '/admin/rollback', OPERATOR, { reason: 'payments failing', rollout: 'checkout' })
  // the very next request, with no wait, already goes back
  const right = await route(gw.url, 'u1')
  t.same(right, { backend: 'legacy', reason: 'rollback' })
  t.equal(rb.status, 200)
  t.match(rb.body, { propagated: true, rollouts: { checkout: { percent: 100, rollback: { mode: 'hard', reason: 'payments failing', by: 'oncall', propagated: true, at: String } } } })
  const seenBefore = fresh.seen.length
  for (let i = 0; i < 20; i++) t.equal((await route(gw.url, `user-${i}`)).backend, 'legacy')
  t.equal(fresh.seen.length, seenBefore, 'nothing reached new')
  const bad = await call(a, 'POST', '/admin/rollback', OPERATOR, { rollout: 'checkout' })
  t.same(bad.body, { error: 'DUALTRACK_ERR_BAD_REQUEST', message: 'body.reason: is required', field: 'reason' })
  t.equal((await call(a, 'POST', '/admin/rollback', OPERATOR, { reason: 'x', mode: 'soft' })).status, 400)
  t.equal((await call(a, 'POST', '/admin/rollback', OPERATOR, { reason: 'x', rollout: 'nope' })).status, 404)
  const res = await call(a, 'POST', '/admin/resume', OPERATOR, {})
  t.equal(res.status, 200)
  t.match(res.body, { rollouts: { checkout: { percent: 100, rollback: null } } }, 'percent is as before the rollback')
  t.same(await route(gw.url, 'u1'), { backend: 'new', reason: 'percent' })
  // rollback of everything (no rollout named)
  await call(a, 'POST', '/admin/rollback', OPERATOR, { reason: 'all of it', mode: 'drain' })
  t.same(await route(gw.url, 'u1'), { backend: 'legacy', reason: 'rollback' })
  const audit = await call(a, 'GET', '/admin/audit?limit=3', VIEWER)
  t.match(audit.body, { entries: [
    { actor: 'oncall', source: 'admin', action: 'rollback', rollout: 'checkout', before: null, after: { mode: 'drain' }, reason: 'all of it' },
    { actor: 'oncall', source: 'admin', action: 'resume', rollout: 'checkout', before: { mode: 'hard' }, after: null },
    { actor: 'oncall', source: 'admin', action: 'rollback', rollout: 'checkout', reason: 'payments failing' }
  ] })
  t.equal((await call(a, 'GET', '/admin/audit?limit=abc', VIEWER)).status, 400)
  const logged = gw.logs.filter((l) => l.msg === 'state change')
  t.ok(logged.length >= 3, 'every change is a log line too')
  t.notMatch(JSON.stringify(gw.logs), new RegExp(OPERATOR), 'tokens are never logged')
})

t.test('explain', async (t) => {
  const { a } = await setup(t)
  const b = bucketOf(encodeSalt('test-salt'), 'u1')
  const r = await call(a, 'GET', '/admin/explain?rollout=checkout&key=u1', VIEWER)
  t.same(r.body, { rollout: 'checkout', key: 'u1', region: null, backend: b < 5000 ? 'new' : 'legacy', reason: 'percent', bucket: b, attributes: {} })
  const g = await call(a, 'GET', '/admin/explain?key=u1&region=guangdong', VIEWER)
  t.same(g.body, { rollout: 'checkout', key: 'u1', region: 'guangdong', backend: 'new', reason: 'region', bucket: b, attributes: {} }, 'one rollout: the name is optional')
  t.match((await call(a, 'GET', '/admin/explain?key=qa-user-1', VIEWER)).body, { backend: 'new', reason: 'force', bucket: -1 })
  t.same((await call(a, 'GET', '/admin/explain', VIEWER)).body, { error: 'DUALTRACK_ERR_BAD_REQUEST', message: 'querystring.key: is required', field: 'key' })
  t.equal((await call(a, 'GET', '/admin/explain?key=u1&rollout=nope', VIEWER)).status, 404)
})

t.test('no token configured: a random operator token is made and logged once', async (t) => {
  const legacy = await startBackend('legacy', t)
  const fresh = await startBackend('new', t)
  const gw = await startGatewayFromYaml(basicYaml(legacy.url, fresh.url), t)
  const lines = gw.logs.filter((l) => typeof l.msg === 'string' && (l.msg as string).startsWith('admin token'))
  t.equal(lines.length, 1)
  const token = /token: (\S+)$/.exec(lines[0]?.msg as string)?.[1]
  t.ok(token && token.length >= 24)
  t.equal((await call(gw.adminUrl, 'PUT', '/admin/rollouts/checkout', token, { percent: 7 })).status, 200)
  t.equal((await call(gw.adminUrl, 'GET', '/admin/state')).status, 401)
})
