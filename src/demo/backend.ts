// a sample order/payment system for the demo and the tests: the same API as both `legacy` and
// `new`, each answer saying which system it is; a request marked x-dualtrack-shadow: 1 is a dry run
import http from 'node:http'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { SaxesParser } from 'saxes'

export interface DemoBackend {
  readonly name: string
  readonly port: number
  readonly url: string
  /** every request seen: method, path, headers (tests assert on these) */
  readonly seen: { method: string, url: string, headers: http.IncomingHttpHeaders, body: string }[]
  close(): Promise<void>
}

interface Order { orderId: string, system: string, userId: string | null, items: { sku: string, qty: number, price: number }[], total: number, status: string, createdAt: string }

export async function startDemoBackend (name: string, port = 0, host = '127.0.0.1'): Promise<DemoBackend> {
  const orders = new Map<string, Order>()
  const seen: DemoBackend['seen'] = []
  let seq = 0
  const prefix = name === 'legacy' ? 'LG' : name === 'new' ? 'NW' : name.slice(0, 2).toUpperCase()
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8')
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: text })
      if (seen.length > 10_000) seen.shift()
      const dryRun = req.headers['x-dualtrack-shadow'] === '1'
      const send = (status: number, body: unknown, headers: http.OutgoingHttpHeaders = {}) => {
        const s = JSON.stringify(body)
        res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(s), ...headers })
        res.end(s)
      }
      const url = new URL(req.url ?? '/', 'http://demo')
      const parsed = parse(text, req.headers['content-type'])
      const p = url.pathname
      if (req.method === 'POST' && p === '/api/orders') {
        const items = Array.isArray(parsed.items) ? parsed.items as Order['items'] : [{ sku: 'tea-001', qty: 1, price: 19.9 }]
        const order: Order = {
          orderId: `${prefix}-${Date.now().toString(36)}-${++seq}`,
          system: name,
          userId: (req.headers['x-user-id'] as string | undefined) ?? null,
          items,
          total: Math.round(items.reduce((s, i) => s + i.qty * i.price, 0) * 100) / 100,
          status: 'created',
          createdAt: new Date().toISOString()
        }
        if (!dryRun) orders.set(order.orderId, order)
        return send(201, { ...order, dryRun }, { location: `/api/orders/${order.orderId}` })
      }
      const m = /^\/api\/orders\/([^/]+)$/.exec(p)
      if (req.method === 'GET' && m) {
        const o = orders.get(decodeURIComponent(m[1] as string))
        return o ? send(200, o) : send(404, { system: name, error: 'order not found', orderId: m[1] })
      }
      if (req.method === 'POST' && (p === '/api/payments' || p === '/api/payments/notify')) {
        const orderId = String(parsed.orderId ?? parsed.out_trade_no ?? '')
        const o = orders.get(orderId)
        // a WeChat-Pay-v2-style notification is answered in its own XML
        if (isXml(req.headers['content-type'])) {
          const ok = o !== undefined
          if (ok && !dryRun) o.status = 'paid'
          const s = `<xml><return_code><![CDATA[${ok ? 'SUCCESS' : 'FAIL'}]]></return_code><return_msg><![CDATA[${ok ? 'OK' : 'order not found'}]]></return_msg></xml>`
          res.writeHead(ok ? 200 : 404, { 'content-type': 'text/xml; charset=utf-8', 'content-length': Buffer.byteLength(s) })
          return res.end(s)
        }
        if (!o) return send(404, { system: name, error: 'order not found', orderId })
        if (!dryRun) o.status = p.endsWith('notify') ? 'paid' : 'paying'
        return send(200, { system: name, orderId, status: p.endsWith('notify') ? 'paid' : 'paying', dryRun })
      }
      if (p === '/api/whoami' || p === '/') return send(200, { system: name, method: req.method, path: p })
      return send(404, { system: name, error: 'no such endpoint', path: p })
    })
  })
  server.keepAliveTimeout = 10_000
  server.listen(port, host)
  await once(server, 'listening')
  const actual = (server.address() as AddressInfo).port
  return {
    name,
    port: actual,
    url: `http://${host}:${actual}`,
    seen,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) })
  }
}

const isXml = (ct: string | undefined) => ct !== undefined && (ct.includes('/xml') || ct.includes('+xml'))

// a WeChat-Pay-v2-style body, <xml><out_trade_no><![CDATA[...]]></out_trade_no>...</xml>, as the
// fields under its root (what WeChat's SDKs make of it); saxes expands no entity and reads no DTD
function xmlFields (text: string): Record<string, string> {
  const fields: Record<string, string> = {}
  let depth = 0
  let value = ''
  const parser = new SaxesParser({ xmlns: false, position: false })
  parser.on('opentag', () => { depth++; value = '' })
  parser.on('text', (t) => { value += t })
  parser.on('cdata', (t) => { value += t })
  parser.on('closetag', (tag) => {
    if (depth === 2 && !Object.hasOwn(fields, tag.name)) Object.defineProperty(fields, tag.name, { value: value.trim(), enumerable: true })
    depth--
  })
  parser.on('doctype', () => { throw new Error('no DTDs') })
  try {
    parser.write(text).close()
  } catch {
    return {}
  }
  return fields
}

function parse (text: string, contentType: string | undefined): Record<string, unknown> {
  if (text === '') return {}
  if (contentType?.includes('application/x-www-form-urlencoded')) return Object.fromEntries(new URLSearchParams(text))
  // WeChat Pay v2: <xml><out_trade_no><![CDATA[...]]></out_trade_no>...</xml>
  if (isXml(contentType)) return xmlFields(text)
  try {
    const v = JSON.parse(text) as unknown
    return v !== null && typeof v === 'object' ? v as Record<string, unknown> : {}
  } catch {
    return {}
  }
}
