// the ownership ledger: GET /admin/affinity/:orderId, the NDJSON export per backend (file store and
// Redis) and the CLI; ledger-export.test.ts exports at scale
import t from 'tap'
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { request } from 'undici'
import { startGatewayFromYaml, tempDir, type TestGateway } from '../helpers/gateway.js'
import { call, OPERATOR, VIEWER } from '../helpers/admin.js'
import { startRedis } from '../helpers/redis.js'
import { startOrderSystem, orderYaml } from '../helpers/order-system.js'

const run = promisify(execFile)
const ORDERS = 3000

interface Line { orderId: string, owner: string, learnedAt: string | null, rollout: string }

async function exportOwners (adminUrl: string, query: string): Promise<{ status: number, lines: Line[], type: string }> {
  const r = await request(`${adminUrl}/admin/affinity${query}`, { headers: { authorization: `Bearer ${VIEWER}` } })
  const text = await r.body.text()
  return { status: r.statusCode, type: String(r.headers['content-type']), lines: r.statusCode === 200 ? text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Line) : [] }
}

// ORDERS orders through the gateway, 16 at a time; their owners as the gateway answered them
async function createOrders (g: TestGateway): Promise<Map<string, string>> {
  const owners = new Map<string, string>()
  let next = 0
  const worker = async () => {
    while (next < ORDERS) {
      const i = next++
      const r = await request(g.url + '/api/orders', { method: 'POST', headers: { 'x-user-id': `l-${i}`, 'content-type': 'application/json' }, body: '{}' })
      const body = await r.body.json() as { orderId: string }
      if (r.statusCode !== 201) throw new Error(`order ${i}: ${r.statusCode}`)
      owners.set(body.orderId, String(r.headers['x-dualtrack-backend']))
    }
  }
  await Promise.all(Array.from({ length: 16 }, worker))
  return owners
}

const cli = (adminUrl: string, ...args: string[]) => run(process.execPath, ['bin/dualtrack.js', ...args, '--admin', adminUrl], { env: { ...process.env, DUALTRACK_TOKEN: VIEWER }, maxBuffer: 64 * 1024 * 1024 })

for (const kind of ['file', 'redis'] as const) {
  t.test(`the ledger on the ${kind} store: exact owner sets per backend`, async (t) => {
    const legacy = await startOrderSystem('legacy', t)
    const fresh = await startOrderSystem('new', t)
    const dir = tempDir()
    const state = kind === 'file'
      ? `state: { store: file, file: "${join(dir, 'state.json')}" }`
      : `state: { store: redis, file: "${join(dir, 'cache.json')}", redis: { url: "${(await startRedis(t)).url}", prefix: "led${process.pid}:" } }`
    const g = await startGatewayFromYaml(orderYaml(legacy.url, fresh.url, state, { operator: OPERATOR, viewer: VIEWER }), t)
    const owners = await createOrders(g)
    t.equal(owners.size, ORDERS)
    for (const backend of ['legacy', 'new'] as const) {
      const ex = await exportOwners(g.adminUrl, `?backend=${backend}`)
      t.equal(ex.status, 200)
      t.equal(ex.type, 'application/x-ndjson')
      const want = [...owners].filter(([, o]) => o === backend).map(([id]) => id).sort()
      t.ok(want.length > ORDERS / 4, `${want.length} orders on ${backend}`)
      t.same(ex.lines.map((l) => l.orderId).sort(), want, `exactly the orders ${backend} owns, each once`)
      t.ok(ex.lines.every((l) => l.owner === backend && l.rollout === 'checkout' && !Number.isNaN(Date.parse(l.learnedAt ?? ''))), 'each with its owner, rollout and learnedAt')
    }
    t.equal((await exportOwners(g.adminUrl, '')).lines.length, ORDERS, 'no backend: every owner')
    t.equal((await exportOwners(g.adminUrl, '?rollout=nope')).lines.length, 0, 'an unknown rollout owns nothing')

    const [id, owner] = [...owners][0] as [string, string]
    const one = await call(g.adminUrl, 'GET', `/admin/affinity/${id}`, VIEWER)
    t.equal(one.status, 200)
    t.same(Object.keys(one.body).sort(), ['learnedAt', 'orderId', 'owner'], 'exactly {orderId, owner, learnedAt}')
    t.match(one.body, { orderId: id, owner, learnedAt: /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/ })
    t.ok(Math.abs(Date.parse(String(one.body.learnedAt)) - Date.now()) < 10 * 60_000, 'learnedAt is when it was recorded')
    t.same((await call(g.adminUrl, 'GET', '/admin/affinity/NO-SUCH-ORDER', VIEWER)).body, { error: 'DUALTRACK_ERR_UNKNOWN_ORDER', message: 'no known owner for order NO-SUCH-ORDER', pending: 0 })
    t.equal((await call(g.adminUrl, 'GET', '/admin/affinity/NO-SUCH-ORDER', VIEWER)).status, 404)
    t.equal((await call(g.adminUrl, 'GET', `/admin/affinity/${id}`)).status, 401, 'a token is needed')
    t.equal((await call(g.adminUrl, 'GET', '/admin/affinity?backend=both', VIEWER)).status, 400, 'backend is legacy or new')

    // the CLI: one order, and the export piped to a file
    const got = await cli(g.adminUrl, 'owners', 'get', id)
    t.match(got.stdout, new RegExp(`order ${id}: ${owner} \\(learned \\d{4}-`))
    const out = await cli(g.adminUrl, 'owners', 'export', '--backend', 'new')
    const lines = out.stdout.split('\n').filter(Boolean).map((l) => (JSON.parse(l) as Line).orderId).sort()
    t.same(lines, [...owners].filter(([, o]) => o === 'new').map(([i]) => i).sort(), 'dualtrack owners export --backend new prints what new owns')
    t.match(out.stderr, /owners exported/)
    const bad = await cli(g.adminUrl, 'owners', 'get', 'NO-SUCH-ORDER').catch((e: { code: number, stderr: string }) => e)
    t.match(bad, { code: 1, stderr: /404 DUALTRACK_ERR_UNKNOWN_ORDER/ })
  })
}
