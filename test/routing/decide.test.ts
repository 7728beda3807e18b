import t from 'tap'
import { parseConfig } from '../../src/config/index.js'
import { bucketOf, compileRollout, decide, encodeSalt, compileRouteTable, readCookie, readQuery, readJwtClaim, type RequestView } from '../../src/routing/index.js'

const cfg = parseConfig(`
backends: { legacy: { url: "http://127.0.0.1:1" }, new: { url: "http://127.0.0.1:2" } }
rollouts:
  checkout:
    percent: 50
    salt: s1
    cohortKey: [header:x-user-id, cookie:uid, query:uid, jwt:sub]
    unkeyed: legacy
    regions: { key: header:x-region, percent: { guangdong: 100, zhejiang: 0 } }
    force: { new: [qa-user-1], legacy: [vip-42] }
`, 'inline.yaml', {})
const rollout = cfg.rollouts.checkout
if (rollout === undefined) throw new Error('no rollout')
const req = (headers: Record<string, string>, url = '/api/orders'): RequestView => ({ method: 'GET', url, headers })
const jwt = (payload: unknown) => `Bearer eyJhbGciOiJIUzI1NiJ9.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.c2ln`

t.test('precedence: rollback, affinity, force, region, percent, unkeyed', async (t) => {
  const r = compileRollout('checkout', rollout)
  t.same(decide(r, req({ 'x-user-id': 'qa-user-1' })), { backend: 'new', reason: 'force', bucket: -1, threshold: -1 })
  t.same(decide(r, req({ 'x-user-id': 'vip-42', 'x-region': 'guangdong' })), { backend: 'legacy', reason: 'force', bucket: -1, threshold: -1 })
  const b = bucketOf(encodeSalt('s1'), 'u7')
  t.same(decide(r, req({ 'x-user-id': 'u7', 'x-region': 'Guangdong' })), { backend: 'new', reason: 'region', bucket: b, region: 'guangdong', threshold: 10_000 }, 'region names are case-insensitive; the decision names the region (lowercase) for the sample-ratio check')
  t.same(decide(r, req({ 'x-user-id': 'u7', 'x-region': 'zhejiang' })), { backend: 'legacy', reason: 'region', bucket: b, region: 'zhejiang', threshold: 0 })
  t.same(decide(r, req({ 'x-user-id': 'u7', 'x-region': 'hunan' })), { backend: b < 5000 ? 'new' : 'legacy', reason: 'percent', bucket: b, threshold: 5000 })
  t.same(decide(r, req({ 'x-region': 'guangdong' })), { backend: 'legacy', reason: 'unkeyed', bucket: -1, threshold: 5000 }, 'a region without a key is unkeyed, held to the rollout\'s percent for the sample-ratio check')
  t.same(decide(r, req({ 'x-user-id': 'qa-user-1' }), 'legacy'), { backend: 'legacy', reason: 'affinity', bucket: -1, threshold: -1 }, 'affinity beats force')
  const hard = compileRollout('checkout', rollout, { percent: 50, regions: {}, rollback: 'hard' })
  t.same(decide(hard, req({ 'x-user-id': 'qa-user-1' }), 'new'), { backend: 'legacy', reason: 'rollback', bucket: -1, threshold: -1 }, 'hard rollback beats affinity')
  const drain = compileRollout('checkout', rollout, { percent: 50, regions: {}, rollback: 'drain' })
  t.same(decide(drain, req({ 'x-user-id': 'qa-user-1' }), 'new'), { backend: 'new', reason: 'affinity', bucket: -1, threshold: -1 }, 'drain keeps orders new owns')
  t.same(decide(drain, req({ 'x-user-id': 'qa-user-1' })), { backend: 'legacy', reason: 'rollback', bucket: -1, threshold: -1 })
})

t.test('key sources: first present wins, garbage falls through', async (t) => {
  const r = compileRollout('checkout', rollout)
  const expect = (key: string) => bucketOf(encodeSalt('s1'), key)
  t.equal(decide(r, req({ cookie: 'a=1; uid=cookie-user; b=2' })).bucket, expect('cookie-user'))
  t.equal(decide(r, req({}, '/api/orders?x=1&uid=q%20user')).bucket, expect('q user'))
  t.equal(decide(r, req({ authorization: jwt({ sub: 'jwt-user' }) })).bucket, expect('jwt-user'))
  t.equal(decide(r, req({ authorization: jwt({ sub: 12345 }) })).bucket, expect('12345'), 'a numeric claim is its decimal string')
  t.equal(decide(r, req({ 'x-user-id': 'h', cookie: 'uid=c' })).bucket, expect('h'), 'header before cookie')
  // malformed cookie, garbage JWT, a 10 KB header: next source or unkeyed, never a throw
  t.equal(decide(r, req({ cookie: ';;==;uid', authorization: 'Bearer not.a.jwt' })).reason, 'unkeyed')
  t.equal(decide(r, req({ 'x-user-id': 'x'.repeat(10_240), cookie: 'uid=fallback' })).bucket, expect('fallback'))
  t.equal(decide(r, req({}, '/api/orders?uid=%E0%A4%A')).reason, 'unkeyed', 'a broken %-escape is absent')
  t.equal(decide(r, req({ authorization: jwt(['array']) })).reason, 'unkeyed')
  t.equal(decide(r, req({ authorization: 'Bearer a.' + Buffer.from('{"sub":').toString('base64url') + '.c' })).reason, 'unkeyed')
  t.equal(readCookie('uid="quoted"', 'uid'), 'quoted')
  t.equal(readCookie('xuid=1; uid=2', 'uid'), '2', 'whole cookie names only')
  t.equal(readQuery('/p?uidx=1&uid=2', 'uid'), '2')
  t.equal(readJwtClaim('Basic abc', 'sub'), undefined)
})

t.test('the same key always gets the same answer', async (t) => {
  const r = compileRollout('checkout', rollout)
  const first = decide(r, req({ 'x-user-id': 'sticky' }))
  for (let i = 0; i < 100; i++) t.same(decide(r, req({ 'x-user-id': 'sticky' })), first)
})

t.test('route table: longest prefix, whole segments, methods', async (t) => {
  const table = compileRouteTable([
    { name: 'orders', match: { prefix: '/api/orders' } },
    { name: 'order-writes', match: { prefix: '/api/orders', methods: ['POST'] } },
    { name: 'notify', match: { prefix: '/api/payments/notify/' } },
    { name: 'payments', match: { prefix: '/api/payments' } },
    { name: 'root', match: { prefix: '/' } }
  ])
  t.equal(table.match('GET', '/api/orders')?.name, 'orders')
  t.equal(table.match('GET', '/api/orders/7')?.name, 'orders')
  t.equal(table.match('POST', '/api/orders')?.name, 'order-writes')
  t.equal(table.match('GET', '/api/ordersX')?.name, 'root', 'not a whole segment')
  t.equal(table.match('POST', '/api/payments/notify')?.name, 'notify')
  t.equal(table.match('POST', '/api/payments/n')?.name, 'payments')
  t.equal(table.match('GET', '/other')?.name, 'root')
  const none = compileRouteTable([{ name: 'orders', match: { prefix: '/api/orders', methods: ['GET'] } }])
  t.equal(none.match('DELETE', '/api/orders'), undefined)
  t.equal(none.match('GET', '/api'), undefined)
})
