// segments end to end: a real gateway in front of two real backends; each kind of segment routes
// with reason segment, force beats segment, segment beats region, a percent segment follows the
// bucket formula and only ever moves users to new, the admin API changes it (and refuses what it
// cannot change), and POST /admin/explain agrees with the data plane
import t, { type Test } from 'tap'
import { request, Agent } from 'undici'
import { startBackend } from '../helpers/backend.js'
import { startGatewayFromYaml, basicYaml } from '../helpers/gateway.js'
import { call, OPERATOR, VIEWER, TOKENS_YAML } from '../helpers/admin.js'
import { waitFor } from '../helpers/wait.js'
import { bucketOf, encodeSalt } from '../../src/routing/index.js'

const SEGMENTS = `    attributes:
      registeredAt: [jwt:reg_at, header:x-user-registered-at]
      tier: [header:x-user-tier, cookie:tier, query:tier]
      appVersion: [header:x-app-version]
      clientIp: [client-ip]
    segments:
      - name: office
        when:
          - { attribute: clientIp, op: IN_CIDR, values: [127.0.0.0/8] }
          - { attribute: tier, op: IN, values: [office] }
        backend: new
      - name: staff
        when: [{ attribute: tier, op: IN, values: [staff, qa], caseInsensitive: true }]
        backend: new
      - name: old-apps
        when: [{ attribute: appVersion, op: SEMVER_LT, value: "3.0.0" }]
        backend: legacy
      - name: new-signups
        when: [{ attribute: registeredAt, op: DATE_AFTER, value: "2026-11-01T00:00:00Z" }]
        percent: 10
`
const NEW_SIGNUP = '2026-11-20T00:00:00Z'
const jwt = (payload: unknown) => `Bearer eyJhbGciOiJub25lIn0.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.`

async function setup (t: Test) {
  const legacy = await startBackend('legacy', t)
  const fresh = await startBackend('new', t)
  const gw = await startGatewayFromYaml(basicYaml(legacy.url, fresh.url, { rollout: SEGMENTS, top: TOKENS_YAML }), t)
  const agent = new Agent({ connections: 16 })
  t.teardown(() => agent.close())
  const send = async (headers: Record<string, string>, path = '/api/orders/7') => {
    const res = await request(gw.url + path, { headers, dispatcher: agent })
    const body = await res.body.json() as { system: string }
    return { backend: res.headers['x-dualtrack-backend'] as string, reason: res.headers['x-dualtrack-reason'] as string, served: body.system, id: res.headers['x-request-id'] as string }
  }
  const logOf = (id: string) => waitFor(() => gw.logs.find((l) => l.msg === 'request' && l.reqId === id), { what: `the access log line of ${id}` })
  return { legacy, fresh, gw, a: gw.adminUrl, send, logOf }
}

t.test('each kind of segment routes with reason segment, and the access log names it', async (t) => {
  const { send, logOf, gw } = await setup(t)
  const cases: [string, Record<string, string>, string, string, string][] = [
    ['fixed backend by header', { 'x-user-id': 'u1', 'x-user-tier': 'QA' }, '/api/orders/7', 'new', 'staff'],
    ['fixed backend by cookie', { 'x-user-id': 'u1', cookie: 'lang=zh; tier=staff' }, '/api/orders/7', 'new', 'staff'],
    ['fixed backend by query, no cohort key', {}, '/api/orders/7?tier=staff', 'new', 'staff'],
    ['client-ip and a second condition', { 'x-user-id': 'u1', 'x-user-tier': 'office' }, '/api/orders/7', 'new', 'office'],
    ['semver to legacy', { 'x-user-id': 'qa-user-2', 'x-app-version': '2.9.9' }, '/api/payments', 'legacy', 'old-apps']
  ]
  for (const [what, headers, path, backend, segment] of cases) {
    const r = await send(headers, path)
    t.same({ backend: r.backend, reason: r.reason, served: r.served }, { backend, reason: 'segment', served: backend }, what)
    t.match(await logOf(r.id), { backend, reason: 'segment', segment }, `${what}: the access log names ${segment}`)
  }
  // the percent segment by JWT claim: the formula on the cohort bucket
  const salt = encodeSalt('test-salt')
  const user = Array.from({ length: 200 }, (_, i) => `signup-${i}`).find((u) => bucketOf(salt, u) < 1000) as string
  const r = await send({ authorization: jwt({ sub: user, reg_at: 1_795_000_000 }) })
  t.same({ backend: r.backend, reason: r.reason, served: r.served }, { backend: 'new', reason: 'segment', served: 'new' }, 'percent segment: a user under 10% is on new')
  t.match(await logOf(r.id), { segment: 'new-signups' })
  const plain = await send({ 'x-user-id': 'u1' })
  t.equal(plain.reason, 'percent', 'no segment: percent as before')
  t.notOk('segment' in (await logOf(plain.id)), 'a line without a segment has no segment field')
  const m = await request(gw.adminUrl + '/metrics')
  const text = await m.body.text()
  t.match(text, /dualtrack_segment_decisions_total\{rollout="checkout",segment="staff",backend="new"\} 3/)
  t.match(text, /dualtrack_segment_decisions_total\{rollout="checkout",segment="new-signups",backend="new"\} 1/)
  t.match(text, /dualtrack_routing_decisions_total\{rollout="checkout",backend="new",reason="segment"\} 5/)
})

t.test('force beats segment; segment beats region; a percent segment without a key is unkeyed', async (t) => {
  const { send } = await setup(t)
  t.match(await send({ 'x-user-id': 'vip-42', 'x-user-tier': 'staff' }), { backend: 'legacy', reason: 'force', served: 'legacy' })
  t.match(await send({ 'x-user-id': 'qa-user-1', 'x-app-version': '1.0.0' }), { backend: 'new', reason: 'force', served: 'new' })
  t.match(await send({ 'x-user-id': 'u5', 'x-region': 'guangdong', 'x-app-version': '2.0.0' }), { backend: 'legacy', reason: 'segment', served: 'legacy' }, 'old apps stay on legacy in a 100% region')
  t.match(await send({ 'x-user-id': 'u5', 'x-region': 'guangdong', 'x-app-version': '3.0.0' }), { backend: 'new', reason: 'region' }, 'not in the segment: the region decides')
  t.match(await send({ 'x-user-registered-at': NEW_SIGNUP }), { backend: 'legacy', reason: 'unkeyed' })
})

t.test('a percent segment over 3,000 keys: the formula, and raising it never moves anyone back', async (t) => {
  const { send, a } = await setup(t)
  const salt = encodeSalt('test-salt')
  const keys = Array.from({ length: 3000 }, (_, i) => `k-${i}`)
  const sweep = async (percent: number) => {
    const onNew = new Set<string>()
    const wrong: string[] = []
    for (let i = 0; i < keys.length; i += 50) {
      await Promise.all(keys.slice(i, i + 50).map(async (k) => {
        const r = await send({ 'x-user-id': k, 'x-user-registered-at': NEW_SIGNUP })
        if (r.reason !== 'segment' || r.served !== r.backend || (r.backend === 'new') !== (bucketOf(salt, k) < percent * 100)) wrong.push(`${k}: ${JSON.stringify(r)}`)
        if (r.backend === 'new') onNew.add(k)
      }))
    }
    t.same(wrong, [], `at ${percent}%: every key where the formula puts it`)
    return onNew
  }
  const at10 = await sweep(10)
  t.ok(at10.size > 200 && at10.size < 400, `${at10.size} of 3000 on new at 10%`)
  const put = await call(a, 'PUT', '/admin/rollouts/checkout', OPERATOR, { segments: { 'new-signups': 50 } })
  t.equal(put.status, 200)
  t.match(put.body, { rollouts: { checkout: { segments: { 'new-signups': 50 }, percent: 50 } } })
  const at50 = await sweep(50)
  t.same([...at10].filter((k) => !at50.has(k)), [], 'nobody on new at 10% is back on legacy at 50%')
  t.ok(at50.size > 1350 && at50.size < 1650, `${at50.size} of 3000 on new at 50%`)
})

t.test('admin: PUT segments (unknown or fixed is 400, nothing changed), state, audit, explain', async (t) => {
  const { a } = await setup(t)
  const before = (await call(a, 'GET', '/admin/state', VIEWER)).body
  t.match(before, { rollouts: { checkout: { segments: { 'new-signups': 10 } } } }, 'state shows percent segments only')
  t.same(Object.keys((before.rollouts as Record<string, { segments: object }>).checkout?.segments ?? {}), ['new-signups'])
  const unknown = await call(a, 'PUT', '/admin/rollouts/checkout', OPERATOR, { percent: 70, segments: { 'new-signups': 20, nope: 5 } })
  t.same(unknown, { status: 400, headers: unknown.headers, body: { error: 'DUALTRACK_ERR_BAD_REQUEST', message: 'body.segments.nope: rollout checkout has no percent segment named nope (percent segments: new-signups)', field: 'segments.nope' } })
  const fixed = await call(a, 'PUT', '/admin/rollouts/checkout', OPERATOR, { segments: { staff: 5 } })
  t.same(fixed.body, { error: 'DUALTRACK_ERR_BAD_REQUEST', message: 'body.segments.staff: segment staff routes to a fixed backend and has no percent (percent segments: new-signups)', field: 'segments.staff' })
  t.equal((await call(a, 'PUT', '/admin/rollouts/checkout', OPERATOR, { segments: { 'new-signups': 5.555 } })).status, 400)
  t.equal((await call(a, 'PUT', '/admin/rollouts/checkout', VIEWER, { segments: { 'new-signups': 5 } })).status, 403)
  t.same((await call(a, 'GET', '/admin/state', VIEWER)).body, before, 'every refusal changed nothing')
  const ok = await call(a, 'PUT', '/admin/rollouts/checkout', OPERATOR, { segments: { 'new-signups': 25 }, reason: 'ramp new sign-ups' })
  t.match(ok.body, { rollouts: { checkout: { segments: { 'new-signups': 25 }, updatedBy: 'oncall', source: 'admin' } }, propagated: true })
  const audit = await call(a, 'GET', '/admin/audit?limit=1', VIEWER)
  t.match(audit.body, { entries: [{ actor: 'oncall', source: 'admin', action: 'set-segments', rollout: 'checkout', before: { 'new-signups': 10 }, after: { 'new-signups': 25 }, reason: 'ramp new sign-ups' }] })

  const g = await call(a, 'GET', '/admin/explain?key=u1&attr.tier=Staff&attr.appVersion=5.0.0', VIEWER)
  t.match(g.body, { rollout: 'checkout', key: 'u1', backend: 'new', reason: 'segment', segment: 'staff', attributes: { tier: 'Staff', appVersion: '5.0.0', registeredAt: null, clientIp: null } })
  const none = await call(a, 'GET', '/admin/explain?key=u1&attr.registeredAt=2026-01-01', VIEWER)
  t.match(none.body, { reason: 'percent', segments: [{ segment: 'office', failed: { why: 'missing' } }, { segment: 'staff' }, { segment: 'old-apps' }, { segment: 'new-signups', failed: { attribute: 'registeredAt', why: 'false', value: '2026-01-01' } }] }, 'why no segment matched')
  t.same((await call(a, 'GET', '/admin/explain?key=u1&attr.nope=1', VIEWER)).body, { error: 'DUALTRACK_ERR_BAD_REQUEST', message: 'query.attr.nope: rollout checkout has no attribute named nope (attributes: registeredAt, tier, appVersion, clientIp)', field: 'attr.nope' })
  const p = await call(a, 'POST', '/admin/explain', VIEWER, { rollout: 'checkout', headers: { Authorization: jwt({ sub: 'u1', reg_at: 1_795_000_000 }) }, cookies: { tier: 'office' }, query: { x: '1' }, clientIp: '10.1.2.3' })
  t.match(p.body, { rollout: 'checkout', key: 'u1', region: null, reason: 'segment', segment: 'new-signups', attributes: { registeredAt: '1795000000', tier: 'office', clientIp: '10.1.2.3', appVersion: null } }, 'POST: the office segment needs a 127/8 address')
  t.equal((await call(a, 'POST', '/admin/explain', VIEWER, { headers: { a: 1 } })).status, 400)
  t.equal((await call(a, 'POST', '/admin/explain', VIEWER, { rollout: 'nope' })).status, 404)
})

t.test('POST /admin/explain agrees with the data plane for 100 generated requests', async (t) => {
  const { send, logOf, a } = await setup(t)
  let seed = 13
  const rnd = () => { seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648; return seed / 2_147_483_648 }
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T
  const reasons = new Set<string>()
  for (let i = 0; i < 100; i++) {
    const headers: Record<string, string> = {}
    const cookies: Record<string, string> = {}
    const query: Record<string, string> = {}
    const user = pick([undefined, `user-${i}`, 'qa-user-1', 'vip-42'])
    if (user !== undefined) { if (rnd() < 0.8) headers['x-user-id'] = user; else headers.authorization = jwt({ sub: user, reg_at: pick([1_795_000_000, 1_700_000_000]) }) }
    const tier = pick([undefined, undefined, undefined, 'staff', 'QA', 'office', 'customer'])
    if (tier !== undefined) { const where = pick(['header', 'cookie', 'query']); if (where === 'header') headers['x-user-tier'] = tier; else if (where === 'cookie') cookies.tier = tier; else query.tier = tier }
    const v = pick([undefined, undefined, '2.9.0', '3.0.0', '5.1.0-beta.1', 'junk'])
    if (v !== undefined) headers['x-app-version'] = v
    const reg = pick([undefined, undefined, undefined, NEW_SIGNUP, '2025-01-01', '1795000000', 'soon'])
    if (reg !== undefined) headers['x-user-registered-at'] = reg
    const region = pick([undefined, 'guangdong', 'zhejiang'])
    if (region !== undefined) headers['x-region'] = region
    const qs = new URLSearchParams(query).toString()
    const cookie = Object.entries(cookies).map(([k, x]) => `${k}=${x}`).join('; ')
    const r = await send(cookie ? { ...headers, cookie } : headers, `/api/orders/7${qs ? `?${qs}` : ''}`)
    const line = await logOf(r.id)
    const e = await call(a, 'POST', '/admin/explain', VIEWER, { rollout: 'checkout', path: '/api/orders/7', headers, cookies, query, clientIp: '127.0.0.1' })
    t.same({ backend: e.body.backend, reason: e.body.reason, segment: e.body.segment }, { backend: r.backend, reason: r.reason, segment: line.segment }, `request ${i}: ${JSON.stringify({ headers, cookies, query })}`)
    reasons.add(r.reason)
  }
  t.same([...reasons].sort(), ['force', 'percent', 'region', 'segment', 'unkeyed'], 'the generated requests reach every rule below affinity')
})
