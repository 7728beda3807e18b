// segments as pure logic (no Fastify): every operator true, false, inverted, missing, unparseable;
// attribute sources; precedence force > segment > region; a percent segment on the cohort bucket
import t from 'tap'
import { parseConfig, type ConditionSpec, type Operator } from '../../src/config/index.js'
import { bucketOf, compileRollout, compileSegments, decide, encodeSalt, explainKey, matchSegment, traceSegments, type RequestView } from '../../src/routing/index.js'

interface Row {
  op: Operator
  value?: string | number
  values?: (string | number)[]
  yes: string
  no: string
  /** a value this operator cannot parse (string operators parse everything) */
  junk?: string
  caseInsensitive?: boolean
}

const ROWS: Row[] = [
  { op: 'IN', values: ['staff', 'qa'], yes: 'qa', no: 'customer' },
  { op: 'IN', values: ['Staff'], yes: 'sTaFF', no: 'stuff', caseInsensitive: true },
  { op: 'NOT_IN', values: ['banned', 'test'], yes: 'customer', no: 'banned' },
  { op: 'NOT_IN', values: ['BANNED'], yes: 'customer', no: 'banned', caseInsensitive: true },
  { op: 'STR_CONTAINS', values: ['@corp.', '@qa.'], yes: 'ann@corp.example', no: 'bob@mail.example' },
  { op: 'STR_CONTAINS', values: ['@CORP.'], yes: 'ann@corp.example', no: 'bob@mail.example', caseInsensitive: true },
  { op: 'STR_STARTS_WITH', values: ['beta-', 'canary-'], yes: 'canary-7', no: 'prod-7' },
  { op: 'STR_ENDS_WITH', values: ['.cn', '.hk'], yes: 'shop.example.hk', no: 'shop.example.com' },
  { op: 'STR_ENDS_WITH', values: ['.CN'], yes: 'shop.example.cn', no: 'shop.example.com', caseInsensitive: true },
  { op: 'NUM_EQ', value: 3, yes: '3.0', no: '4', junk: 'three' },
  { op: 'NUM_GT', value: '2.5', yes: '3', no: '2.5', junk: '3 orders' },
  { op: 'NUM_GTE', value: 3, yes: '3', no: '2.99', junk: '' + 'NaN' },
  { op: 'NUM_LT', value: -1, yes: '-1.5', no: '-1', junk: '1e' },
  { op: 'NUM_LTE', value: 10, yes: '1e1', no: '10.01', junk: '0x10' },
  { op: 'DATE_AFTER', value: '2026-11-01T00:00:00Z', yes: '2026-11-20T08:00:00+08:00', no: '2026-10-31T23:59:59Z', junk: 'last tuesday' },
  { op: 'DATE_AFTER', value: 1_761_955_200, yes: '1764000000', no: '1700000000', junk: '17e8' },
  { op: 'DATE_AFTER', value: '2026-11-01', yes: '2026-11-01T00:00:01', no: '2026-11-01', junk: '2026-13-45' },
  { op: 'DATE_BEFORE', value: '2026-11-01T00:00:00Z', yes: '2026-10-01', no: '2026-12-01T00:00:00.000Z', junk: 'tomorrow' },
  { op: 'SEMVER_EQ', value: '5.1.0', yes: 'v5.1.0', no: '5.1.1', junk: '5.1' },
  { op: 'SEMVER_GT', value: '5.0.0', yes: '5.0.1', no: '5.0.0-rc.1', junk: 'latest' },
  { op: 'SEMVER_LT', value: '5.0.0', yes: '5.0.0-beta.2', no: '5.0.0', junk: '5.x' },
  { op: 'REGEX', value: '^[a-z]+@example\\.com$', yes: 'ann@example.com', no: 'ann@example.org' },
  { op: 'REGEX', value: '^ANN@', yes: 'ann@example.com', no: 'bob@example.com', caseInsensitive: true },
  { op: 'IN_CIDR', values: ['10.0.0.0/8', '192.168.1.7', '2001:db8::/32'], yes: '10.20.30.40', no: '11.0.0.1', junk: 'localhost' },
  { op: 'IN_CIDR', values: ['2001:db8::/32'], yes: '2001:db8::1', no: '2001:db9::1', junk: '2001:db8::zz' },
  { op: 'IN_CIDR', values: ['192.168.1.0/24'], yes: '::ffff:192.168.1.9', no: '::ffff:192.168.2.9', junk: '192.168.1.256' }
]

function one (row: Row, inverted: boolean) {
  const cond: ConditionSpec = { attribute: 'a', op: row.op, inverted, caseInsensitive: row.caseInsensitive === true, ...(row.values ? { values: row.values } : { value: row.value }) }
  const cs = compileSegments({ a: ['header:x-a'] }, [{ name: 'seg', when: [cond], backend: 'new' }], () => false)
  if (cs === undefined) throw new Error('no segments compiled')
  return (v: string | undefined) => {
    const headers: Record<string, string> = v === undefined ? {} : { 'x-a': v }
    return matchSegment(cs, { method: 'GET', url: '/', headers }) !== undefined
  }
}

t.test('every operator: true, false, inverted, missing, unparseable', async (t) => {
  for (const row of ROWS) {
    const name = `${row.op}${row.caseInsensitive ? ' caseInsensitive' : ''} ${JSON.stringify(row.values ?? row.value)}`
    const plain = one(row, false)
    const inv = one(row, true)
    t.equal(plain(row.yes), true, `${name}: ${row.yes} holds`)
    t.equal(plain(row.no), false, `${name}: ${row.no} does not`)
    t.equal(inv(row.yes), false, `${name} inverted: ${row.yes} does not hold`)
    t.equal(inv(row.no), true, `${name} inverted: ${row.no} holds`)
    t.equal(plain(undefined), false, `${name}: a missing attribute is false`)
    t.equal(inv(undefined), false, `${name} inverted: a missing attribute is still false`)
    if (row.junk !== undefined) {
      t.equal(plain(row.junk), false, `${name}: unparseable ${row.junk} is false`)
      t.equal(inv(row.junk), false, `${name} inverted: unparseable ${row.junk} is still false`)
    }
  }
  const covered = new Set(ROWS.map((r) => r.op))
  t.equal(covered.size, 17, 'all 17 operators of DESIGN.md §8 are in the table')
})

t.test('case-sensitive by default', async (t) => {
  t.equal(one({ op: 'IN', values: ['staff'], yes: '', no: '' }, false)('Staff'), false)
  t.equal(one({ op: 'REGEX', value: '^ann', yes: '', no: '' }, false)('ANN'), false)
})

const jwt = (payload: unknown) => `Bearer eyJhbGciOiJub25lIn0.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.`
const cfg = parseConfig(`
server: { trustedProxies: [10.0.0.0/8] }
backends: { legacy: { url: "http://127.0.0.1:1" }, new: { url: "http://127.0.0.1:2" } }
rollouts:
  checkout:
    percent: 0
    salt: s1
    cohortKey: [header:x-user-id, jwt:sub]
    regions: { key: header:x-region, percent: { guangdong: 100 } }
    force: { new: [qa-user-1], legacy: [vip-42] }
    attributes:
      registeredAt: [jwt:reg_at, header:x-user-registered-at]
      tier: [header:x-user-tier, cookie:tier, query:tier]
      appVersion: [header:x-app-version]
      clientIp: [client-ip]
    segments:
      - name: office
        when: [{ attribute: clientIp, op: IN_CIDR, values: [203.0.113.0/24] }]
        backend: new
      - name: staff
        when:
          - { attribute: tier, op: IN, values: [staff, qa], caseInsensitive: true }
          - { attribute: appVersion, op: SEMVER_LT, value: "5.0.0", inverted: true }
        backend: new
      - name: new-signups
        when: [{ attribute: registeredAt, op: DATE_AFTER, value: "2026-11-01T00:00:00Z" }]
        percent: 30
      - name: old-apps
        when: [{ attribute: appVersion, op: SEMVER_LT, value: "3.0.0" }]
        backend: legacy
`, 'inline.yaml', {})
const rollout = cfg.rollouts.checkout
if (rollout === undefined) throw new Error('no rollout')
const req = (headers: Record<string, string>, url = '/api/orders', peer = '127.0.0.1'): RequestView => ({ method: 'GET', url, headers, socket: { remoteAddress: peer } })
const NEW_SIGNUP = '2026-11-20T00:00:00Z'

t.test('attribute sources: header, cookie, query, jwt, client-ip', async (t) => {
  const r = compileRollout('checkout', rollout, undefined, (ip) => ip.startsWith('10.'))
  const staff = (h: Record<string, string>, url?: string) => decide(r, req({ 'x-user-id': 'u1', 'x-app-version': '5.2.0', ...h }, url))
  t.match(staff({ 'x-user-tier': 'STAFF' }), { backend: 'new', reason: 'segment', segment: 'staff' }, 'header')
  t.match(staff({ cookie: 'a=1; tier=qa' }), { reason: 'segment', segment: 'staff' }, 'cookie')
  t.match(staff({}, '/api/orders?tier=qa'), { reason: 'segment', segment: 'staff' }, 'query')
  t.match(staff({}), { reason: 'percent', segment: undefined }, 'no tier anywhere: no segment')
  t.match(decide(r, req({ 'x-user-id': 'u1', 'x-user-tier': 'staff', 'x-app-version': '4.9.9' })), { reason: 'percent' }, 'every condition must hold')
  t.match(decide(r, req({ 'x-user-id': 'u1', 'x-user-tier': 'staff' })), { reason: 'percent' }, 'a missing appVersion fails its inverted condition too')
  const b = bucketOf(encodeSalt('s1'), 'u1')
  t.same(decide(r, req({ authorization: jwt({ sub: 'u1', reg_at: 1_795_000_000 }) })), { backend: b < 3000 ? 'new' : 'legacy', reason: 'segment', bucket: b, segment: 'new-signups', threshold: 3000 }, 'jwt claim as epoch seconds (held to the segment\'s threshold)')
  t.match(decide(r, req({ 'x-user-id': 'u1', 'x-user-registered-at': NEW_SIGNUP })), { reason: 'segment', segment: 'new-signups' }, 'second source')
  t.match(decide(r, req({ 'x-user-id': 'u1' }, '/', '203.0.113.9')), { backend: 'new', reason: 'segment', segment: 'office' }, 'peer address')
  t.match(decide(r, req({ 'x-user-id': 'u1', 'x-forwarded-for': '203.0.113.9' }, '/', '198.51.100.1')), { reason: 'percent' }, 'x-forwarded-for from an untrusted peer is ignored')
  t.match(decide(r, req({ 'x-user-id': 'u1', 'x-forwarded-for': '1.1.1.1, 203.0.113.9, 10.1.1.1' }, '/', '10.0.0.2')), { segment: 'office' }, 'behind trusted proxies: the nearest untrusted hop')
  t.match(decide(r, req({ 'x-user-id': 'u1', 'x-forwarded-for': '203.0.113.9, 1.1.1.1' }, '/', '10.0.0.2')), { reason: 'percent' }, 'a hop the client wrote itself is not believed')
  t.match(decide(r, req({ 'x-user-id': 'u1', 'x-forwarded-for': 'junk' }, '/', '10.0.0.2')), { reason: 'percent' }, 'a junk hop: unknown address')
})

t.test('precedence: force beats segment, segment beats region; backend segments need no key', async (t) => {
  const r = compileRollout('checkout', rollout)
  // threshold: what the sample-ratio check holds the request to; -1 keeps it out of the check
  t.match(decide(r, req({ 'x-user-id': 'vip-42', 'x-user-tier': 'staff', 'x-app-version': '6.0.0' })), { backend: 'legacy', reason: 'force', segment: undefined, threshold: -1 })
  t.match(decide(r, req({ 'x-user-id': 'u9', 'x-region': 'guangdong', 'x-app-version': '2.0.0' })), { backend: 'legacy', reason: 'segment', segment: 'old-apps', threshold: -1 }, 'segment beats a 100% region; a fixed backend is outside the check')
  t.match(decide(r, req({ 'x-user-id': 'u9', 'x-region': 'guangdong' })), { backend: 'new', reason: 'region', threshold: 10_000 }, 'no segment: region')
  t.match(decide(r, req({ 'x-user-tier': 'qa', 'x-app-version': '5.0.0' })), { backend: 'new', reason: 'segment', bucket: -1, threshold: -1 }, 'a backend segment with no cohort key')
  t.match(decide(r, req({ 'x-user-registered-at': NEW_SIGNUP })), { backend: 'legacy', reason: 'unkeyed', threshold: 3000 }, 'a percent segment with no cohort key is unkeyed, held to the segment\'s share')
  t.match(decide(r, req({})), { backend: 'legacy', reason: 'unkeyed', threshold: 0 }, 'unkeyed outside every segment: the rollout\'s share')
  t.match(decide(r, req({ 'x-user-id': 'u9' })), { reason: 'percent', threshold: 0 })
  t.match(decide(r, req({ 'x-user-id': 'u1', 'x-user-tier': 'qa', 'x-app-version': '5.0.0' }), 'legacy'), { backend: 'legacy', reason: 'affinity' }, 'affinity beats segment')
  const rolled = compileRollout('checkout', rollout, { percent: 0, regions: {}, rollback: 'hard' })
  t.match(decide(rolled, req({ 'x-user-tier': 'qa', 'x-app-version': '5.0.0' })), { backend: 'legacy', reason: 'rollback' }, 'rollback beats segment')
  t.match(decide(r, req({ 'x-user-id': 'u1', 'x-user-tier': 'qa', 'x-app-version': '5.0.0', 'x-user-registered-at': NEW_SIGNUP })), { segment: 'staff' }, 'the first segment that holds decides')
})

t.test('a percent segment buckets like percent: monotonic, sticky; the run-time state sets it', async (t) => {
  const keys = Array.from({ length: 3000 }, (_, i) => `user-${i}`)
  const salt = encodeSalt('s1')
  let prev = new Set<string>()
  for (const p of [0, 10, 30, 50, 100]) {
    const r = compileRollout('checkout', rollout, { percent: 0, regions: {}, rollback: null, segments: { 'new-signups': p } })
    const onNew = new Set<string>()
    for (const k of keys) {
      const d = decide(r, req({ 'x-user-id': k, 'x-user-registered-at': NEW_SIGNUP }))
      if (d.reason !== 'segment') throw new Error(`${k}: ${d.reason}`)
      if ((d.backend === 'new') !== (bucketOf(salt, k) < p * 100)) throw new Error(`${k} at ${p}%: not the formula`)
      if (d.backend === 'new') onNew.add(k)
    }
    t.ok([...prev].every((k) => onNew.has(k)), `raising to ${p}% moved nobody back to legacy`)
    prev = onNew
  }
  t.equal(prev.size, 3000)
  const yamlOnly = compileRollout('checkout', rollout, { percent: 0, regions: {}, rollback: null })
  t.equal(yamlOnly.segments?.list.find((s) => s.name === 'new-signups')?.threshold, 3000, 'no run-time value: the YAML percent')
})

t.test('explain: given values, the trace says why each segment did not match', async (t) => {
  const r = compileRollout('checkout', rollout)
  const e = explainKey(r, 'u1', undefined, { tier: 'staff', appVersion: 'five' })
  t.equal(e.reason, 'percent')
  t.same(e.attributes, { registeredAt: null, tier: 'staff', appVersion: 'five', clientIp: null })
  t.same(e.segments, [
    { segment: 'office', matched: false, failed: { attribute: 'clientIp', op: 'IN_CIDR', inverted: false, value: null, why: 'missing' } },
    { segment: 'staff', matched: false, failed: { attribute: 'appVersion', op: 'SEMVER_LT', inverted: true, value: 'five', why: 'unparseable' } },
    { segment: 'new-signups', matched: false, failed: { attribute: 'registeredAt', op: 'DATE_AFTER', inverted: false, value: null, why: 'missing' } },
    { segment: 'old-apps', matched: false, failed: { attribute: 'appVersion', op: 'SEMVER_LT', inverted: false, value: 'five', why: 'unparseable' } }
  ])
  const m = explainKey(r, 'u1', undefined, { tier: 'qa', appVersion: '5.0.0' })
  t.match(m, { backend: 'new', reason: 'segment', segment: 'staff' })
  t.same(m.segments?.map((s) => s.segment), ['office', 'staff'], 'the trace stops at the match')
  t.match(explainKey(r, 'qa-user-1', undefined, { appVersion: '1.0.0' }), { reason: 'force' }, 'force first here too')
  const cs = r.segments
  if (cs === undefined) throw new Error('no segments')
  t.match(traceSegments(cs, ['2026-01-01', undefined, undefined, undefined])[2], { matched: false, failed: { why: 'false' } })
})

t.test('a rollout without segments reads no attribute and compiles none', async (t) => {
  const plain = parseConfig(`
backends: { legacy: { url: "http://127.0.0.1:1" }, new: { url: "http://127.0.0.1:2" } }
rollouts:
  c: { percent: 50, cohortKey: [header:x-user-id], attributes: { tier: [header:x-user-tier] } }
`, 'inline.yaml', {})
  const r = compileRollout('c', plain.rollouts.c as NonNullable<typeof plain.rollouts.c>)
  t.equal(r.segments, undefined)
  t.same(Object.keys(decide(r, req({ 'x-user-id': 'u1' }))).sort(), ['backend', 'bucket', 'reason', 'segment', 'threshold'])
})

t.test('the plain-semver fast path agrees with semver', async (t) => {
  const { comparePlainSemver, parseSemver } = await import('../../src/config/index.js')
  const semver = (await import('semver')).default
  const versions = ['0.0.0', '1.2.3', 'v1.2.3', '1.2.10', '1.10.2', '10.0.0', '5.0.0', '5.0.0-rc.1', '5.0.0+build', '01.2.3', '1.2', '1.2.3.4', '1..3', 'x', '', '999999999999999.0.0', '9999999999999999.0.0']
  const targets = ['5.0.0', '5.0.0-beta.2', '1.2.3', '0.0.1', '10.0.0-0']
  let fast = 0
  for (const v of versions) {
    for (const target of targets) {
      const tv = parseSemver(target)
      if (tv === undefined) throw new Error(target)
      const c = comparePlainSemver(v, tv)
      const s = parseSemver(v)
      if (c !== undefined) { fast++; t.equal(c, semver.compare(s as NonNullable<typeof s>, tv), `${v} vs ${target}`) }
      else if (s !== undefined) t.ok(/[-+]|^9{16}|^v?0\d/.test(v), `${v}: only non-plain versions leave the fast path`)
    }
  }
  t.ok(fast >= 40, `${fast} comparisons took the fast path`)
})

t.test('the date fast path agrees with Date.parse', async (t) => {
  const { parseDate } = await import('../../src/config/index.js')
  // the reference: the regular expressions and Date.parse alone, as parseDate read every date before
  const ISO_DATE = /^\d{4}-\d{2}-\d{2}$/
  const ISO_ZONED = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})$/i
  const ISO_LOCAL = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?$/i
  const reference = (v: string): number | undefined => {
    const s = v.trim()
    if (/^\d{1,12}$/.test(s)) return Number(s) * 1000
    const p = ISO_DATE.test(s) || ISO_ZONED.test(s) ? Date.parse(s) : ISO_LOCAL.test(s) ? Date.parse(s + 'Z') : NaN
    return Number.isNaN(p) ? undefined : p
  }
  const pad = (n: number, w: number) => String(n).padStart(w, '0')
  const corpus = [
    '', '0', '1795000000', '123456789012', '1234567890123', ' 1795000000 ', '2026-11-01', '2026-11-01T00:00:00Z', '2026-11-01T08:00:00+08:00',
    '2026-11-01T08:00:00-05:30', '2026-11-01T08:00:00.123Z', '2026-11-01T08:00:00.1Z', '2026-11-01T08:00:00.123456789Z', '2026-11-01t08:00:00z',
    '2026-11-01 08:00:00Z', '2026-11-01T08:00Z', '2026-11-01T08:00:00', '2026-11-01T08:00:00+0800', '2026-02-29T00:00:00Z', '2026-02-30T00:00:00Z',
    '2026-02-31', '2026-04-31T00:00:00Z', '2026-01-32', '2026-13-01', '2026-00-10', '2026-01-01T24:00:00Z', '2026-01-01T23:59:60Z', '2026-01-01T23:60:00Z',
    '0000-01-01', '0099-12-31T00:00:00Z', '0100-01-01', '1969-12-31T23:59:59Z', '9999-12-31T23:59:59.999Z', '2026-11-01T08:00:00+24:00', '2026-11-01T08:00:00+23:59',
    '2026-11-01T08:00:00-00:00', '2026-11-01X08:00:00Z', '2026/11/01', '20261101', '2026-1-01', '+02026-11-01', '-2026-11-01', 'not a date', '2026-11-01T08:00:00ZZ',
    '2026-11-01T08:00:00.12aZ', '2026-11-01T0a:00:00Z', '2026-11-01T08:00:00+08:0a', '２０２６-11-01'
  ]
  // every month and day (including impossible ones), hours and offsets around their bounds
  for (let m = 0; m <= 13; m++) for (const d of [0, 1, 28, 29, 30, 31, 32]) corpus.push(`2024-${pad(m, 2)}-${pad(d, 2)}`, `2026-${pad(m, 2)}-${pad(d, 2)}T12:34:56Z`)
  for (const h of [0, 9, 23, 24]) for (const off of ['Z', '+00:00', '+14:00', '-12:00', '.999Z', '.000Z']) corpus.push(`2026-06-15T${pad(h, 2)}:59:59${off}`)
  // the calendar arithmetic, century and leap rules included, on every day of years around them
  let days = 0
  for (const y of [100, 101, 399, 400, 1582, 1600, 1899, 1900, 1970, 2000, 2024, 2025, 2100, 2400, 9999]) {
    for (let m = 1; m <= 12; m++) {
      for (let d = 1; d <= 31; d++) {
        for (const v of [`${pad(y, 4)}-${pad(m, 2)}-${pad(d, 2)}`, `${pad(y, 4)}-${pad(m, 2)}-${pad(d, 2)}T${pad(d % 24, 2)}:${pad(d, 2)}:${pad(59 - d, 2)}.${pad(d * 31, 3)}Z`]) {
          if (parseDate(v) !== reference(v)) { t.fail(`${v}: ${parseDate(v)} != ${reference(v)}`); return }
          days++
        }
      }
    }
  }
  t.pass(`${days} days and date-times agree`)
  let fast = 0
  for (const v of corpus) {
    t.equal(parseDate(v), reference(v), JSON.stringify(v))
    if (reference(v) !== undefined) fast++
  }
  t.ok(fast > 100, `${fast} dates that parse`)
})

t.test('attributes read for one request are never taken for the next, across the request counter\'s wrap', async (t) => {
  const r = compileRollout('checkout', rollout)
  const cs = r.segments
  if (cs === undefined) throw new Error('no segments')
  cs.gen = 0xffff_fffe
  const staff = { 'x-user-id': 'u1', 'x-user-tier': 'staff', 'x-app-version': '5.1.0' }
  const plain = { 'x-user-id': 'u1' }
  for (const [headers, segment] of [[staff, 'staff'], [plain, undefined], [staff, 'staff'], [plain, undefined]] as const) {
    t.equal(decide(r, req(headers)).segment, segment, `request number ${cs.gen}`)
  }
  t.equal(cs.gen, 3, 'the counter started again')
})
