// a small order/payment system for the affinity tests: it knows the orders it created, and a
// payment or a provider's callback for an order it does not hold is a 404 (as a real one would say);
// and the traffic the failover tests send through gateways in front of two of them
import http from 'node:http'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { request } from 'undici'

export interface OrderSystem {
  readonly name: 'legacy' | 'new'
  readonly url: string
  readonly orders: Set<string>
  /** order ids whose payment or callback reached this system */
  readonly paid: string[]
  close (): Promise<void>
}

export async function startOrderSystem (name: 'legacy' | 'new', t: { teardown(fn: () => unknown): void }): Promise<OrderSystem> {
  const orders = new Set<string>()
  const paid: string[] = []
  let seq = 0
  const prefix = name === 'legacy' ? 'LG' : 'NW'
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8')
      const path = (req.url ?? '/').split('?')[0]
      const answer = (status: number, value: unknown, headers: Record<string, string> = {}) => {
        res.writeHead(status, { 'content-type': 'application/json', ...headers })
        res.end(JSON.stringify(value))
      }
      if (req.method === 'POST' && path === '/api/orders') {
        const orderId = `${prefix}-${process.pid}-${++seq}`
        orders.add(orderId)
        return answer(201, { orderId, system: name }, { location: `/api/orders/${orderId}` })
      }
      if (req.method === 'POST' && (path === '/api/payments' || path === '/api/payments/notify')) {
        const id = path === '/api/payments'
          ? (JSON.parse(body || '{}') as { orderId?: string }).orderId
          : new URLSearchParams(body).get('out_trade_no') ?? undefined
        if (id === undefined || !orders.has(id)) return answer(404, { error: 'unknown order', orderId: id, system: name })
        paid.push(id)
        return answer(200, { paid: id, system: name })
      }
      return answer(200, { system: name, path })
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const s: OrderSystem = {
    name,
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    orders,
    paid,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) })
  }
  t.teardown(() => s.close())
  return s
}

/** the gateway YAML for the HA tests: one rollout at 50% whose payments follow their order */
export function orderYaml (legacy: string, fresh: string, state: string, tokens: { operator: string, viewer: string }): string {
  return `
server: { host: 127.0.0.1, port: 0 }
admin:
  host: 127.0.0.1
  port: 0
  tokens:
    - { name: oncall, token: "${tokens.operator}", role: operator }
    - { name: grafana, token: "${tokens.viewer}", role: viewer }
backends:
  legacy: { url: "${legacy}", timeoutMs: 5000, connectTimeoutMs: 1000 }
  new: { url: "${fresh}", timeoutMs: 5000, connectTimeoutMs: 1000 }
${state}
rollouts:
  checkout:
    percent: 50
    salt: ha
    cohortKey: [header:x-user-id]
    affinity:
      learn: [json:$.orderId]
      lookup: [json:$.orderId, form:out_trade_no]
      ttl: 1d
routes:
  - { name: orders, match: { prefix: /api/orders }, rollout: checkout }
  - { name: payments, match: { prefix: /api/payments }, rollout: checkout }
default: legacy
`
}

export interface Answer { status: number, backend: string, reason: string, body: Record<string, unknown> }

/** a POST through a gateway to the order system: its status, backend, reason and JSON answer */
export async function send (base: string, path: string, opts: { user?: string, json?: unknown, form?: Record<string, string> }): Promise<Answer> {
  const headers: Record<string, string> = {}
  if (opts.user !== undefined) headers['x-user-id'] = opts.user
  let body: string | undefined
  if (opts.json !== undefined) { headers['content-type'] = 'application/json'; body = JSON.stringify(opts.json) }
  if (opts.form !== undefined) { headers['content-type'] = 'application/x-www-form-urlencoded'; body = new URLSearchParams(opts.form).toString() }
  const r = await request(base + path, { method: 'POST', headers, body, headersTimeout: 10_000, bodyTimeout: 10_000 })
  const text = await r.body.text()
  return { status: r.statusCode, backend: String(r.headers['x-dualtrack-backend']), reason: String(r.headers['x-dualtrack-reason']), body: JSON.parse(text) as Record<string, unknown> }
}

/** why a gateway routes a keyed GET now (x-dualtrack-reason): 'rollback' once a rollback is in force */
export async function reasonOf (gatewayUrl: string): Promise<string> {
  const r = await request(gatewayUrl + '/api/orders/x', { headers: { 'x-user-id': 'someone' } })
  await r.body.dump()
  return String(r.headers['x-dualtrack-reason'])
}

/** n orders created through one gateway: order id -> the system that holds it */
export async function createOrders (t: { equal(a: unknown, b: unknown): unknown }, gatewayUrl: string, n: number): Promise<Map<string, 'legacy' | 'new'>> {
  const made = new Map<string, 'legacy' | 'new'>()
  for (let i = 0; i < n; i++) {
    const r = await send(gatewayUrl, '/api/orders', { user: `pre-${i}`, json: { items: [i] } })
    t.equal(r.status, 201)
    made.set(String(r.body.orderId), r.backend as 'legacy' | 'new')
  }
  return made
}

/** each order's provider callback (order id only) through gatewayUrl: those that missed their owner */
export async function callbacksOffOwner (gatewayUrl: string, orders: Map<string, 'legacy' | 'new'>): Promise<string[]> {
  const wrong: string[] = []
  for (const [id, owner] of orders) {
    const c = await send(gatewayUrl, '/api/payments/notify', { form: { out_trade_no: id } })
    if (c.status !== 200 || c.backend !== owner || c.reason !== 'affinity') wrong.push(`${id}: ${c.status} ${c.backend} ${c.reason}, owner ${owner}`)
  }
  return wrong
}

export interface OrderFlows {
  /** flows completed, and those completed since markFailedOver() */
  readonly counts: { done: number, afterFailover: number }
  /** every request that failed or reached a system that does not hold its order */
  readonly failures: string[]
  markFailedOver (): void
  /** stop the flows and wait for the ones under way */
  stop (): Promise<void>
}

/**
 * steady traffic: four flows of order -> payment (with the user) -> callback (order id only), each
 * alternating between the gateways, until stopped or deadlineMs (and at most 5,000 each)
 */
export function orderFlows (gatewayUrls: string[], deadlineMs: number): OrderFlows {
  let stopped = false
  let failedOver = false
  const failures: string[] = []
  const counts = { done: 0, afterFailover: 0 }
  const deadline = performance.now() + deadlineMs
  const flow = async (k: number) => {
    let n = 0
    while (!stopped && performance.now() < deadline && n < 5000) {
      const g = gatewayUrls[(k + n) % gatewayUrls.length] as string
      const user = `u${k}-${n++}`
      try {
        const o = await send(g, '/api/orders', { user, json: { items: [1] } })
        if (o.status !== 201) { failures.push(`order ${user}: ${o.status}`); continue }
        const id = String(o.body.orderId)
        const p = await send(g, '/api/payments', { user, json: { orderId: id } })
        if (p.status !== 200 || p.backend !== o.backend) failures.push(`payment ${id}: ${p.status} on ${p.backend}, order on ${o.backend}`)
        const c = await send(g, '/api/payments/notify', { form: { out_trade_no: id } })
        if (c.status !== 200 || c.backend !== o.backend) failures.push(`callback ${id}: ${c.status} on ${c.backend} (${c.reason}), order on ${o.backend}`)
        counts.done++
        if (failedOver) counts.afterFailover++
      } catch (err) {
        failures.push(`${user}: ${(err as Error).message}`)
      }
    }
  }
  const running = Promise.all([0, 1, 2, 3].map(flow))
  return {
    counts,
    failures,
    markFailedOver: () => { failedOver = true },
    stop: async () => { stopped = true; await running }
  }
}
