// the fast origin: two node:http servers in one process (legacy and new), keep-alive.
// GET answers a fixed ~1 KB JSON order; POST/PUT/PATCH echo the body back with its content-type.
// GET /__bench/stats on either port answers how many requests each server has seen.
//
//   taskset -c 1 node bench/origin.js          # prints {"legacy":PORT,"new":PORT}
//   ORIGIN_LEGACY_PORT=4001 ORIGIN_NEW_PORT=4002 node bench/origin.js
import { createServer } from 'node:http'
import { sampleOrder } from './lib/order.js'

const HOST = process.env.ORIGIN_HOST ?? '127.0.0.1'

function order (backend) {
  // backend first: the two systems' answers differ in it, so every shadow comparison is a mismatch
  const o = { backend, ...sampleOrder(), pad: '' }
  // fill to ~1 KB so every candidate moves the same bytes
  o.pad = 'x'.repeat(Math.max(0, 1024 - JSON.stringify(o).length))
  return Buffer.from(JSON.stringify(o))
}

const counts = { legacy: { GET: 0, other: 0 }, new: { GET: 0, other: 0 } }

function handler (backend) {
  const body = order(backend)
  const getHeaders = { 'content-type': 'application/json', 'content-length': body.length, 'x-origin': backend }
  return (req, res) => {
    if (req.method === 'GET' || req.method === 'HEAD') {
      if (req.url === '/__bench/stats') {
        const s = JSON.stringify(counts)
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(s) })
        res.end(s)
        return
      }
      counts[backend].GET++
      res.writeHead(200, getHeaders)
      res.end(req.method === 'HEAD' ? undefined : body)
      return
    }
    counts[backend].other++
    const chunks = []
    let size = 0
    req.on('data', (c) => { chunks.push(c); size += c.length })
    req.on('end', () => {
      res.writeHead(200, {
        'content-type': req.headers['content-type'] ?? 'application/octet-stream',
        'content-length': size,
        'x-origin': backend
      })
      res.end(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size))
    })
  }
}

function listen (backend, port) {
  const server = createServer({ keepAlive: true }, handler(backend))
  // idle keep-alive longer than any proxy's pool timeout: the proxy closes first
  server.keepAliveTimeout = 65_000
  server.headersTimeout = 66_000
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, HOST, () => resolve(server))
  })
}

const legacy = await listen('legacy', Number(process.env.ORIGIN_LEGACY_PORT ?? 0))
const next = await listen('new', Number(process.env.ORIGIN_NEW_PORT ?? 0))
process.stdout.write(JSON.stringify({ legacy: legacy.address().port, new: next.address().port }) + '\n')

function shutdown () {
  legacy.close()
  next.close()
  legacy.closeAllConnections()
  next.closeAllConnections()
}
process.once('SIGTERM', shutdown)
process.once('SIGINT', shutdown)
