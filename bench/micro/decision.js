// micro: the routing decision per request (key extraction + murmur3 + decision), on the built gateway
//   node bench/micro/decision.js
// over a pool of 10k random user ids, so no branch predictor or inline cache sees one key only
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { bench, group, run, summary, do_not_optimize } from 'mitata'
import { importDist } from './dist.js'
import { ROOT_DIR } from '../lib/settings.js'

const routing = await importDist('routing/index.js', ['compileRollout', 'decideInto', 'bucketOf', 'encodeSalt', 'compileLookup'])
const config = await importDist('config/index.js', ['parseConfig'])
const { compileRollout, decideInto, bucketOf, encodeSalt } = routing

const POOL = 10_000
const YAML = `
backends:
  legacy: { url: "http://127.0.0.1:4001" }
  new: { url: "http://127.0.0.1:4002" }
rollouts:
  header:   { percent: 50, salt: bench, cohortKey: [header:x-user-id] }
  chain:    { percent: 50, salt: bench, cohortKey: [cookie:uid, jwt:sub, header:x-user-id] }
  jwt:      { percent: 50, salt: bench, cohortKey: [jwt:sub] }
  regional: { percent: 50, salt: bench, cohortKey: [header:x-user-id], regions: { key: header:x-region, percent: { guangdong: 100, zhejiang: 20 } },
              force: { new: [qa-user-1, qa-user-2], legacy: [vip-42] } }
  # the same rollout with three segments (DESIGN.md §8): a Set, a semver and a date condition
  segmented:
    percent: 50
    salt: bench
    cohortKey: [header:x-user-id]
    attributes:
      tier: [header:x-user-tier]
      appVersion: [header:x-app-version]
      registeredAt: [jwt:reg_at, header:x-user-registered-at]
    segments:
      - { name: staff, when: [{ attribute: tier, op: IN, values: [staff, qa], caseInsensitive: true }], backend: new }
      - { name: old-apps, when: [{ attribute: appVersion, op: SEMVER_LT, value: "3.0.0" }], backend: legacy }
      - { name: new-signups, when: [{ attribute: registeredAt, op: DATE_AFTER, value: "2026-11-01T00:00:00Z" }], percent: 10 }
routes:
  - { name: api, match: { prefix: / }, rollout: header }
`
const cfg = config.parseConfig(YAML, 'bench/micro/decision.yaml', {})
const rollouts = Object.fromEntries(Object.entries(cfg.rollouts).map(([name, r]) => [name, compileRollout(name, r)]))

const REGIONS = ['guangdong', 'zhejiang', 'beijing', 'shanghai']
const b64url = (o) => Buffer.from(JSON.stringify(o)).toString('base64url')
const users = Array.from({ length: POOL }, () => `u-${Math.floor(Math.random() * 1e9).toString(36)}`)
const plain = users.map((u) => ({ method: 'GET', url: '/api/orders/o-1', headers: { 'x-user-id': u, host: 'shop.example' } }))
const regional = users.map((u, i) => ({ method: 'GET', url: '/api/orders/o-1', headers: { 'x-user-id': u, 'x-region': REGIONS[i % 4] } }))
// the chain finds no cookie, then the JWT claim: the costliest usual case
const jwts = users.map((u) => ({ method: 'GET', url: '/api/orders/o-1', headers: { cookie: 'theme=dark; lang=zh', authorization: `Bearer ${b64url({ alg: 'none' })}.${b64url({ sub: u, iat: 1_764_000_000 })}.sig` } }))
// segments: every condition read and evaluated, none holds (the costliest case), and the last one holds
const segMiss = users.map((u) => ({ method: 'GET', url: '/api/orders/o-1', headers: { 'x-user-id': u, 'x-user-tier': 'customer', 'x-app-version': '5.2.1', 'x-user-registered-at': '2025-06-01T08:00:00Z' } }))
const segHit = users.map((u) => ({ method: 'GET', url: '/api/orders/o-1', headers: { 'x-user-id': u, 'x-user-tier': 'customer', 'x-app-version': '5.2.1', 'x-user-registered-at': '2026-11-20T08:00:00Z' } }))
const salt = encodeSalt('bench')

// the shape the request path builds (proxy/handler.ts), so decideInto sees one hidden class
const out = { backend: 'legacy', reason: 'default', bucket: -1, threshold: -1, segment: undefined }
let i = 0
const next = () => { i = (i + 1) % POOL; return i }

// sanity before timing: about half of the pool on new
let onNew = 0
for (const req of plain) if (decideInto(out, rollouts.header, req, undefined).backend === 'new') onNew++
console.log(`pool of ${POOL} ids at 50%: ${(onNew / POOL * 100).toFixed(1)}% on new`)
for (const [what, pool, want] of [['segMiss', segMiss, 'percent'], ['segHit', segHit, 'segment']]) {
  const got = decideInto(out, rollouts.segmented, pool[0], undefined).reason
  if (got !== want) throw new Error(`${what}: reason ${got}, expected ${want}`)
}

summary(() => {
  group('per request', () => {
    bench('bucketOf(salt, key) only: murmur3 + mod', () => do_not_optimize(bucketOf(salt, users[next()])))
    bench('decideInto: header key', () => do_not_optimize(decideInto(out, rollouts.header, plain[next()], undefined)))
    bench('decideInto: header key + force sets + region', () => do_not_optimize(decideInto(out, rollouts.regional, regional[next()], undefined)))
    bench('decideInto: jwt:sub', () => do_not_optimize(decideInto(out, rollouts.jwt, jwts[next()], undefined)))
    bench('decideInto: cookie → jwt chain', () => do_not_optimize(decideInto(out, rollouts.chain, jwts[next()], undefined)))
  })
})
summary(() => {
  group('segments', () => {
    bench('decideInto: no segments (header key)', () => do_not_optimize(decideInto(out, rollouts.header, plain[next()], undefined)))
    bench('decideInto: 3 segments, none holds (IN + SEMVER_LT + DATE_AFTER read)', () => do_not_optimize(decideInto(out, rollouts.segmented, segMiss[next()], undefined)))
    bench('decideInto: 3 segments, the third (percent) holds', () => do_not_optimize(decideInto(out, rollouts.segmented, segHit[next()], undefined)))
  })
})
group('short cut', () => {
  bench('decideInto: affinity owner known (no key read, no hash)', () => do_not_optimize(decideInto(out, rollouts.header, plain[next()], 'new')))
})

// affinity lookups in a callback's body (issue 19): the payment providers' samples of
// test/fixtures/payment-callbacks/, each copy with its own id (a JSON parse is memoised per buffer)
const FIX = join(ROOT_DIR, 'test', 'fixtures', 'payment-callbacks')
const BODIES = 1000
const bodies = (file, sample) => {
  const text = readFileSync(join(FIX, file), 'utf8')
  return Array.from({ length: BODIES }, (_, n) => Buffer.from(text.replaceAll(sample, `${sample}${n}`)))
}
const lookup = (source) => routing.compileLookup([source])
const cases = [
  ['form:out_trade_no, Alipay (1.0 KB form)', lookup('form:out_trade_no'), bodies('alipay.form', '2026113000017'), 'application/x-www-form-urlencoded; charset=utf-8'],
  ['json:$.orderId, flat JSON (40 B)', lookup('json:$.orderId'), Array.from({ length: BODIES }, (_, n) => Buffer.from(JSON.stringify({ orderId: `NW-${n}`, amount: 9.5 }))), 'application/json'],
  ['json:$.data.object.metadata.order_id, Stripe (0.6 KB)', lookup('json:$.data.object.metadata.order_id'), bodies('stripe.json', '2026113000053'), 'application/json'],
  ['json:$.notificationItems[0]…merchantReference, Adyen (0.6 KB)', lookup('json:$.notificationItems[0].NotificationRequestItem.merchantReference'), bodies('adyen.json', '2026113000077'), 'application/json'],
  ['xml:out_trade_no, WeChat Pay v2 (0.8 KB XML)', lookup('xml:out_trade_no'), bodies('wechatpay-v2.xml', '2026113000023'), 'text/xml']
]
for (const [name, l, pool, ct] of cases) {
  const id = l.read({ method: 'POST', url: '/n', headers: {} }, '/n', pool[7], ct)
  if (id === undefined || !id.endsWith('7')) throw new Error(`${name}: read ${id}`)
}
// hostile XML at the default affinity.maxBodyBytes (64 KiB): what an attacker can make one lookup cost
const laughs = '<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY lol "lol">' +
  Array.from({ length: 9 }, (_, i) => `<!ENTITY lol${i + 1} "${`&lol${i === 0 ? '' : i};`.repeat(10)}">`).join('') + ']><xml><out_trade_no>&lol9;</out_trade_no></xml>'
// each names the element last, so the scan cannot skip the body (an attacker's best case)
const ID = '<out_trade_no>LG-1</out_trade_no>'
const hostile = [
  ['billion laughs (refused at the DOCTYPE)', Buffer.from(laughs)],
  ['DOCTYPE with a 64 KB internal subset', Buffer.from('<!DOCTYPE xml [' + '<!ENTITY e "x">'.repeat(4300) + `]><xml>${ID}</xml>`)],
  ['9,000 nested elements', Buffer.from('<xml>' + '<a>'.repeat(9000) + ID + '</a>'.repeat(9000) + '</xml>')],
  ['8,000 flat elements', Buffer.from('<xml>' + '<a>x</a>'.repeat(8000) + ID + '</xml>')],
  ['64 KB of text', Buffer.from('<xml><pad>' + 'x'.repeat(65_000) + `</pad>${ID}</xml>`)],
  ['13,000 &amp; in text', Buffer.from('<xml><pad>' + '&amp;'.repeat(13_000) + `</pad>${ID}</xml>`)],
  ['800 attributes', Buffer.from('<xml ' + Array.from({ length: 800 }, (_, i) => `a${i}="${'v'.repeat(70)}"`).join(' ') + `>${ID}</xml>`)],
  ['6,500 comments', Buffer.from('<xml>' + '<!-- c -->'.repeat(6500) + ID + '</xml>')]
]
// the same bound on the other body sources, for comparison: what any 64 KiB body lookup can cost
const json = lookup('json:$.notificationItems[0].NotificationRequestItem.merchantReference')
const form = lookup('form:out_trade_no')
const others = [
  ['json: 32,000 nested arrays', json, Buffer.from('['.repeat(32_000) + ']'.repeat(32_000)), 'application/json'],
  ['json: 13,000 small numbers', json, Buffer.from(`{"a":[${Array.from({ length: 13_000 }, (_, i) => i % 10).join(',')}]}`), 'application/json'],
  ['json: 64 KB string', json, Buffer.from(`{"a":"${'x'.repeat(65_000)}"}`), 'application/json'],
  ['form: 16,000 pairs', form, Buffer.from(Array.from({ length: 16_000 }, () => 'a=1').join('&')), 'application/x-www-form-urlencoded'],
  ['form: 13,000 %-escapes', form, Buffer.from('a=' + '%41'.repeat(21_000)), 'application/x-www-form-urlencoded']
]
for (const [name, , body] of others) if (body.length > 65_536) throw new Error(`${name}: ${body.length} bytes is over the bound`)
const xml = lookup('xml:out_trade_no')
const view = { method: 'POST', url: '/api/payments/notify', headers: {} }
for (const [name, body] of hostile) if (body.length > 65_536) throw new Error(`${name}: ${body.length} bytes is over the bound`)

// CPU time per lookup (user + sys): the steadiest figure on a shared machine (PERF-NOTES.md);
// the median of 5 rounds
const cpuPerCall = (fn, n) => {
  const rounds = []
  for (let r = 0; r < 5; r++) {
    const c0 = process.cpuUsage()
    for (let k = 0; k < n; k++) do_not_optimize(fn())
    const c = process.cpuUsage(c0)
    rounds.push((c.user + c.system) / n)
  }
  return rounds.sort((a, b) => a - b)[2]
}
// the decision in CPU time too: on a loaded machine wall-clock per call swings several-fold, CPU
// time much less; compare each case with the plain header key of the same run
console.log('\ndecision, CPU ns per call (median of 5 rounds of 200,000):')
for (const [name, r, pool] of [
  ['header key (the baseline)', rollouts.header, plain],
  ['3 segments, none holds', rollouts.segmented, segMiss],
  ['3 segments, the third (percent) holds', rollouts.segmented, segHit]
]) {
  const ns = cpuPerCall(() => decideInto(out, r, pool[next()], undefined), 200_000) * 1000
  console.log(`  ${ns.toFixed(0).padStart(9)}  ${name}`)
}
console.log('\naffinity lookup, CPU µs per call (median of 5 rounds):')
for (const [name, l, pool, ct] of cases) {
  const size = pool[0].length
  console.log(`  ${cpuPerCall(() => l.read(view, '/n', pool[next() % BODIES], ct), 20_000).toFixed(2).padStart(9)}  ${name}, ${size} B`)
}
// two copies taken in turn: a JSON parse is memoised per buffer
const twoOf = (body) => [body, Buffer.from(body)]
for (const [name, body] of hostile) {
  const two = twoOf(body)
  console.log(`  ${cpuPerCall(() => xml.read(view, '/n', two[next() & 1], 'text/xml'), 200).toFixed(2).padStart(9)}  xml:out_trade_no on ${name}, ${body.length} B`)
}
for (const [name, l, body, ct] of others) {
  const two = twoOf(body)
  console.log(`  ${cpuPerCall(() => l.read(view, '/n', two[next() & 1], ct), 200).toFixed(2).padStart(9)}  ${name}, ${body.length} B`)
}
console.log('')

summary(() => {
  group('affinity lookup: callback body → order id', () => {
    for (const [name, l, pool, ct] of cases) bench(name, () => do_not_optimize(l.read(view, '/api/payments/notify', pool[next() % BODIES], ct)))
  })
})
group('affinity lookup: hostile XML bodies (64 KiB bound)', () => {
  for (const [name, body] of hostile) bench(`${name}: ${(body.length / 1024).toFixed(1)} KB`, () => do_not_optimize(xml.read(view, '/api/payments/notify', body, 'text/xml')))
})

// colors only on a terminal: the output is pasted into issues and results
await run({ colors: process.stdout.isTTY === true })
