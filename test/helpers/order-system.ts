// a small order/payment system for the affinity tests: it knows the orders it created, and a
// payment or a provider's callback for an order it does not hold is a 404 (as a real one would say)
import http from 'node:http'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'

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
