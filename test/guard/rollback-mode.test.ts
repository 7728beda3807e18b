// issue 10: the guard rolls back in guard.rollbackMode. drain (the default): payments for orders
// new already holds keep reaching it, every new order goes to legacy; hard: everything to legacy,
// and legacy answers 404 for orders it never had
import t, { type Test } from 'tap'
import { request, Agent } from 'undici'
import { startBackend, type TestBackend } from '../helpers/backend.js'
import { startGatewayFromYaml, basicYaml, type TestGateway } from '../helpers/gateway.js'
import { TOKENS_YAML } from '../helpers/admin.js'
import { waitFor } from '../helpers/wait.js'

/** a stateful order system: a payment for an order it does not hold is 404; probes fail on demand */
function orders (b: TestBackend, prefix: string) {
  const held = new Set<string>()
  const ctl = { failProbes: false }
  let seq = 0
  b.handler = (req, res, body) => {
    const send = (status: number, obj: unknown) => { res.writeHead(status, { 'content-type': 'application/json' }); res.end(JSON.stringify(obj)) }
    if (req.method === 'POST' && req.url === '/api/orders') {
      const orderId = `${prefix}-${++seq}`
      held.add(orderId)
      return send(201, { orderId })
    }
    if (req.method === 'POST' && req.url === '/api/payments') {
      const { orderId } = JSON.parse(body.toString()) as { orderId: string }
      return held.has(orderId) ? send(200, { orderId, status: 'paying' }) : send(404, { error: 'order not found', orderId })
    }
    send(ctl.failProbes ? 500 : 200, {})
  }
  return ctl
}

async function setup (t: Test, mode: string) {
  const legacy = await startBackend('legacy', t)
  const fresh = await startBackend('new', t)
  orders(legacy, 'L')
  const ctl = orders(fresh, 'N')
  const rollout = `    affinity: { learn: [json:$.orderId], lookup: [json:$.orderId], ttl: 1d }
    guard: { window: 1500ms, minRequests: 20, maxErrorRate: 0.05${mode ? `, rollbackMode: ${mode}` : ''} }
`
  const yaml = basicYaml(legacy.url, fresh.url, { top: TOKENS_YAML, rollout }).replace('percent: 50', 'percent: 100')
  const gw = await startGatewayFromYaml(yaml, t)
  return { ctl, gw }
}

async function post (gw: TestGateway, path: string, body: unknown, user?: string) {
  const r = await request(gw.url + path, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json', ...(user ? { 'x-user-id': user } : {}) } })
  const json = await r.body.json() as Record<string, unknown>
  return { backend: r.headers['x-dualtrack-backend'], reason: r.headers['x-dualtrack-reason'], status: r.statusCode, json }
}

/** probes until the guard rolls back: vip-42 is forced to legacy, everyone else is on new (100%) */
async function breach (gw: TestGateway, t: Test, ctl: { failProbes: boolean }) {
  const agent = new Agent({ connections: 8 })
  t.teardown(() => agent.close())
  let i = 0
  const timer = setInterval(() => {
    for (const user of ['vip-42', `probe-${i++}`, 'vip-42', `probe-${i++}`]) {
      request(gw.url + '/api/orders/probe', { headers: { 'x-user-id': user }, dispatcher: agent }).then((r) => r.body.dump(), () => {})
    }
  }, 20)
  t.teardown(() => clearInterval(timer))
  ctl.failProbes = true
  await waitFor(() => gw.app.state.doc.rollouts.checkout?.rollback ?? undefined, { what: 'the guard rolling the rollout back' })
  clearInterval(timer)
  return gw.app.state.doc.rollouts.checkout?.rollback
}

async function owned (gw: TestGateway, backend: string) {
  const text = await (await request(gw.adminUrl + '/metrics')).body.text()
  return Number(new RegExp(`dualtrack_rollback_owned_total\\{rollout="checkout",backend="${backend}"\\} (\\d+)`).exec(text)?.[1] ?? -1)
}

for (const mode of ['', 'hard']) {
  t.test(`guard breach at 100% with payments to come for orders on new: ${mode || 'default (drain)'}`, async (t) => {
    const { ctl, gw } = await setup(t, mode)
    const placed = []
    for (let k = 0; k < 12; k++) placed.push(await post(gw, '/api/orders', {}, `buyer-${k}`))
    t.same(placed.map((p) => [p.backend, p.status]), placed.map(() => ['new', 201]), 'at 100% every order is on new')
    const rb = await breach(gw, t, ctl)
    t.match(rb, { mode: mode || 'drain', by: 'guard' })
    // the payments of the orders placed before the breach, and a new order after it
    const pays = []
    for (const p of placed) pays.push(await post(gw, '/api/payments', { orderId: p.json.orderId }))
    const fresh = await post(gw, '/api/orders', {}, 'buyer-after')
    t.same([fresh.backend, fresh.reason, fresh.status], ['legacy', 'rollback', 201], 'a new order goes to legacy')
    if (mode === 'hard') {
      t.same(pays.map((p) => [p.backend, p.reason, p.status]), pays.map(() => ['legacy', 'rollback', 404]), 'hard: every payment to legacy, which lacks the order (404)')
    } else {
      t.same(pays.map((p) => [p.backend, p.reason, p.status]), pays.map(() => ['new', 'affinity', 200]), 'drain: every payment still reaches new')
    }
    t.ok(await owned(gw, 'new') >= placed.length, `dualtrack_rollback_owned_total{backend="new"} counts the ${placed.length} payments for orders new owns (${await owned(gw, 'new')})`)
  })
}
