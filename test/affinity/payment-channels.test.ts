// every common payment provider's callback reaches the system that owns its order, through a real
// gateway in front of real backends; the samples are test/fixtures/payment-callbacks/ (made-up data)
import t, { type Test } from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { request } from 'undici'
import { startBackend, type TestBackend } from '../helpers/backend.js'
import { startGatewayFromYaml, type TestGateway } from '../helpers/gateway.js'
import { parse } from 'yaml'
import { startDemoBackend } from '../../src/demo/index.js'

const DIR = join(import.meta.dirname, '..', 'fixtures', 'payment-callbacks')
interface Sample { provider: string, file: string, path: string, contentType: string, lookup: string, sampleOrderId: string, headers: Record<string, string> }
const SAMPLES = JSON.parse(readFileSync(join(DIR, 'index.json'), 'utf8')) as Sample[]
const fixture = (file: string) => readFileSync(join(DIR, file), 'utf8')

// the README's recipe, as written there: every channel on one rollout (a shop takes several at once)
const README = readFileSync(join(import.meta.dirname, '..', '..', 'README.md'), 'utf8')
const SECTION = README.slice(README.indexOf('\n## Payment channels'), README.indexOf('\n## ', README.indexOf('\n## Payment channels') + 1))
const RECIPE = parse(/```yaml\n([\s\S]*?)```/.exec(SECTION)?.[1] ?? '') as { rollouts: { checkout: { affinity: { lookup: string[] } } } }
const LOOKUP = RECIPE.rollouts.checkout.affinity.lookup

function yaml (legacy: string, fresh: string) {
  return `
server: { bodyLimit: 4194304 }
backends:
  legacy: { url: "${legacy}", timeoutMs: 5000 }
  new: { url: "${fresh}", timeoutMs: 5000 }
rollouts:
  checkout:
    percent: 0
    salt: channels
    cohortKey: [header:x-user-id]
    force: { new: [buyer-on-new] }
    unkeyed: new
    affinity:
      learn: [json:$.orderId, xml:orderId]
      lookup: [${LOOKUP.map((l) => JSON.stringify(l)).join(', ')}]
      ttl: 1d
      maxBodyBytes: 262144
routes:
  - { name: orders, match: { prefix: /api/orders }, rollout: checkout }
  - { name: payments, match: { prefix: /api/payments }, rollout: checkout }
`
}

// a system that creates orders with ids of its own form (legacy answers XML, as old systems do)
function orderSystem (b: TestBackend, prefix: string, xml: boolean) {
  let seq = 0
  b.handler = (req, res) => {
    if (req.method === 'POST' && req.url === '/api/orders') {
      const id = `${prefix}${String(++seq).padStart(6, '0')}`
      const body = xml ? `<?xml version="1.0"?><order><orderId>${id}</orderId><status>created</status></order>` : JSON.stringify({ orderId: id, status: 'created' })
      res.writeHead(201, { 'content-type': xml ? 'application/xml' : 'application/json' })
      return res.end(body)
    }
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ system: b.name, url: req.url }))
  }
}

async function setUp (t: Test) {
  const legacy = await startBackend('legacy', t)
  const fresh = await startBackend('new', t)
  orderSystem(legacy, 'LG2026', true)
  orderSystem(fresh, 'NW2026', false)
  const gw = await startGatewayFromYaml(yaml(legacy.url, fresh.url), t)
  return { legacy, fresh, gw }
}

async function createOrder (gw: TestGateway, user: string) {
  const r = await request(`${gw.url}/api/orders`, { method: 'POST', body: '{"items":[{"sku":"tea","qty":1}]}', headers: { 'content-type': 'application/json', 'x-user-id': user } })
  const text = await r.body.text()
  const m = /<orderId>([^<]+)<|"orderId":"([^"]+)"/.exec(text)
  return { backend: r.headers['x-dualtrack-backend'], status: r.statusCode, id: m?.[1] ?? m?.[2] ?? '' }
}

async function send (gw: TestGateway, path: string, body: string | Buffer, contentType: string, headers: Record<string, string> = {}) {
  const r = await request(gw.url + path, { method: 'POST', body, headers: { 'content-type': contentType, ...headers } })
  await r.body.dump()
  return { status: r.statusCode, backend: r.headers['x-dualtrack-backend'], reason: r.headers['x-dualtrack-reason'] }
}

t.test('the README names every provider with its tested lookup line and sample', async (t) => {
  t.ok(SECTION.length > 100, 'README has a Payment channels section')
  for (const s of SAMPLES) {
    t.ok(LOOKUP.includes(s.lookup), `${s.provider}: ${s.lookup} is in the README's lookup list`)
    const row = SECTION.split('\n').find((l) => l.startsWith(`| ${s.provider} `))
    t.ok(row?.includes(`\`${s.lookup}\``) && row.includes(`(test/fixtures/payment-callbacks/${s.file})`), `${s.provider}: its table row names the lookup and links the sample`)
    t.ok(SECTION.includes(s.path), `${s.provider}: the README's sample callback is the tested one (${s.path})`)
  }
})

t.test('each provider\'s callback reaches the system that owns its order; an unknown id falls through', async (t) => {
  const { legacy, fresh, gw } = await setUp(t)
  const onNew = await createOrder(gw, 'buyer-on-new')
  const onLegacy = await createOrder(gw, 'someone')
  t.same([onNew.backend, onNew.status], ['new', 201])
  t.same([onLegacy.backend, onLegacy.status], ['legacy', 201], 'legacy answers XML: learned with xml:orderId')
  t.match(onLegacy.id, /^LG2026/)
  for (const s of SAMPLES) {
    t.test(s.provider, async (t) => {
      const text = fixture(s.file)
      t.ok(text.includes(s.sampleOrderId) || s.path.includes(s.sampleOrderId), 'the sample names its order')
      t.notOk(/x-user-id|userId|user_id/i.test(text), 'the callback carries no user id')
      for (const [order, owner, other] of [[onNew, fresh, legacy], [onLegacy, legacy, fresh]] as const) {
        const body = text.replaceAll(s.sampleOrderId, order.id)
        const path = s.path.replaceAll(s.sampleOrderId, order.id)
        const before = other.seen.length
        const r = await send(gw, path, body, s.contentType, s.headers)
        t.same(r, { status: 200, backend: owner.name, reason: 'affinity' }, `${s.provider}: the order on ${owner.name} gets its callback`)
        const got = owner.seen.at(-1)
        t.equal(got?.url, path)
        t.equal(got?.body.toString('utf8'), body, 'the body arrives byte for byte (its signature still verifies)')
        for (const [k, v] of Object.entries(s.headers)) t.equal(got?.headers[k], v, `${k} passed on`)
        t.equal(other.seen.length, before, `${other.name} never saw it`)
      }
      // the sample as it is names an order neither system created
      const unknown = await send(gw, s.path, text, s.contentType, s.headers)
      t.same(unknown, { status: 200, backend: 'new', reason: 'unkeyed' }, 'an unknown id falls through to the rules below affinity')
    })
  }
})

t.test('hostile XML is never expanded or fetched, is bounded, and is still routed (unkeyed) without a 5xx', async (t) => {
  const { legacy, fresh, gw } = await setUp(t)
  const sink = await startBackend('sink', t)
  const owned = await createOrder(gw, 'someone')
  t.equal(owned.backend, 'legacy')
  // every hostile body names a real order owned by legacy: were the body read, it would go there
  const id = owned.id
  const laughs = `<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY lol "lol">${
    Array.from({ length: 9 }, (_, i) => `<!ENTITY lol${i + 1} "${`&lol${i === 0 ? '' : i};`.repeat(10)}">`).join('')
  }]><xml><out_trade_no>${id}</out_trade_no><attach>&lol9;</attach></xml>`
  const hostile: [string, string | Buffer][] = [
    ['billion laughs (internal DTD entities)', laughs],
    ['external entity (XXE) over HTTP', `<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM "${sink.url}/xxe">]><xml><attach>&xxe;</attach><out_trade_no>${id}</out_trade_no></xml>`],
    ['external entity (XXE) from a file', `<!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><xml><out_trade_no>&xxe;</out_trade_no></xml>`],
    ['external DTD', `<!DOCTYPE xml SYSTEM "${sink.url}/dtd"><xml><out_trade_no>${id}</out_trade_no></xml>`],
    ['parameter entities', `<!DOCTYPE xml [<!ENTITY % p SYSTEM "${sink.url}/p"> %p;]><xml><out_trade_no>${id}</out_trade_no></xml>`],
    ['an undeclared entity before the id', `<xml><attach>&lol9;</attach><out_trade_no>${id}</out_trade_no></xml>`],
    ['10,000 nested elements', '<xml>' + '<a>'.repeat(10_000) + `<out_trade_no>${id}</out_trade_no>` + '</a>'.repeat(10_000) + '</xml>'],
    ['10,000 unclosed nested elements', '<xml>' + '<a>'.repeat(10_000) + `<out_trade_no>${id}</out_trade_no>`],
    ['10,000 flat elements before the id', '<xml>' + '<a/>'.repeat(10_000) + `<out_trade_no>${id}</out_trade_no></xml>`],
    ['2 MB body (over maxBodyBytes: not read)', Buffer.concat([Buffer.from(`<xml><out_trade_no>${id}</out_trade_no><pad>`), Buffer.alloc(2 * 1024 * 1024, 'x'), Buffer.from('</pad></xml>')])]
  ]
  const rssBefore = process.resourceUsage().maxRSS
  for (const [what, body] of hostile) {
    const size = Buffer.byteLength(body)
    const before = fresh.seen.length
    // several at once: each is a bounded scan, none holds the others up
    const answers = await Promise.all(Array.from({ length: 8 }, () => send(gw, '/api/payments/notify/wechatpay', body, 'text/xml')))
    for (const a of answers) t.same(a, { status: 200, backend: 'new', reason: 'unkeyed' }, `${what}: routed as unkeyed, not to the order's owner`)
    t.equal(fresh.seen.length, before + 8)
    t.equal(fresh.seen.at(-1)?.body.length, size, `${what}: passed on untouched (${size} bytes)`)
  }
  // chunked: no length to bound the read by, so the body streams through unread
  const chunked = await request(`${gw.url}/api/payments/notify/wechatpay`, {
    method: 'POST',
    headers: { 'content-type': 'text/xml' },
    body: Readable.from((async function * () { yield `<xml><out_trade_no>${id}</out_trade_no>`; yield '<pad>' + 'y'.repeat(1 << 20) + '</pad></xml>' })())
  })
  await chunked.body.dump()
  t.same([chunked.statusCode, chunked.headers['x-dualtrack-reason']], [200, 'unkeyed'], 'a chunked body is never buffered for a lookup')
  t.equal(sink.seen.length, 0, 'no entity or DTD was ever fetched')
  t.equal(legacy.seen.filter((s) => s.url.startsWith('/api/payments')).length, 0, 'nothing hostile reached the owner by its id')
  // a billion laughs expanded would take gigabytes; the scan stays within a few bounded bodies
  const grownMb = (process.resourceUsage().maxRSS - rssBefore) / 1024
  t.ok(grownMb < 256, `peak RSS grew ${grownMb.toFixed(0)} MB over ${hostile.length * 8} hostile bodies`)
  // and the gateway still routes well-formed callbacks by their id
  const fine = await send(gw, '/api/payments/notify/wechatpay', `<xml><out_trade_no><![CDATA[${id}]]></out_trade_no></xml>`, 'text/xml')
  t.same(fine, { status: 200, backend: 'legacy', reason: 'affinity' })
})

t.test('the demo systems take a WeChat-Pay-v2-style XML notification as well as the form one', async (t) => {
  const legacy = await startDemoBackend('legacy')
  const fresh = await startDemoBackend('new')
  t.teardown(() => legacy.close())
  t.teardown(() => fresh.close())
  const gw = await startGatewayFromYaml(`
backends:
  legacy: { url: "${legacy.url}" }
  new: { url: "${fresh.url}" }
rollouts:
  checkout:
    percent: 0
    cohortKey: [header:x-user-id]
    force: { new: [buyer-on-new] }
    affinity:
      learn: [json:$.orderId, header:location]
      lookup: [path:/api/orders/:orderId, json:$.orderId, form:out_trade_no, xml:out_trade_no, query:orderId]
      ttl: 1d
routes:
  - { name: orders, match: { prefix: /api/orders }, rollout: checkout }
  - { name: payments, match: { prefix: /api/payments }, rollout: checkout }
`, t)
  const status = async (id: string) => {
    const r = await request(`${gw.url}/api/orders/${id}`)
    return ((await r.body.json()) as { status: string }).status
  }
  for (const user of ['buyer-on-new', 'someone']) {
    const order = await createOrder(gw, user)
    const owner = order.backend as string
    const xml = fixture('wechatpay-v2.xml').replaceAll('2026113000023', order.id)
    const r = await request(`${gw.url}/api/payments/notify`, { method: 'POST', body: xml, headers: { 'content-type': 'text/xml' } })
    const answer = await r.body.text()
    t.same([r.statusCode, r.headers['x-dualtrack-backend'], r.headers['x-dualtrack-reason'], r.headers['content-type']], [200, owner, 'affinity', 'text/xml; charset=utf-8'])
    t.equal(answer, '<xml><return_code><![CDATA[SUCCESS]]></return_code><return_msg><![CDATA[OK]]></return_msg></xml>', 'answered the way WeChat Pay expects')
    t.equal(await status(order.id), 'paid', `the order on ${owner} is paid`)
    const form = await send(gw, '/api/payments/notify', `out_trade_no=${order.id}&trade_status=TRADE_SUCCESS`, 'application/x-www-form-urlencoded')
    t.same(form, { status: 200, backend: owner, reason: 'affinity' }, 'the form notification still works')
  }
  // a notification for an order the system does not have: a FAIL the provider will retry
  const r = await request(`${fresh.url}/api/payments/notify`, { method: 'POST', body: fixture('wechatpay-v2.xml'), headers: { 'content-type': 'text/xml' } })
  t.same([r.statusCode, await r.body.text()], [404, '<xml><return_code><![CDATA[FAIL]]></return_code><return_msg><![CDATA[order not found]]></return_msg></xml>'])
})
