// baseline: about the Node limit for this job. node:http in, undici Pool.stream() out, and the
// same routing rule as dualtrack: murmur3 x86 32 over utf8("salt:" + x-user-id) mod 10000 < percent*100
//   ORIGIN_LEGACY=... ORIGIN_NEW=... PORT=0 SALT=bench PERCENT=50 node bench/baselines/undici-minimal.js
// prints {"port":N} once listening
import { createServer } from 'node:http'
import { Pool } from 'undici'
import murmur from 'murmurhash3js-revisited'

const SALT = Buffer.from(`${process.env.SALT ?? 'bench'}:`, 'utf8')
const THRESHOLD = Math.round(Number(process.env.PERCENT ?? 50) * 100)
const pools = {
  legacy: new Pool(process.env.ORIGIN_LEGACY ?? 'http://127.0.0.1:4001', { connections: 128, keepAliveTimeout: 4_000 }),
  new: new Pool(process.env.ORIGIN_NEW ?? 'http://127.0.0.1:4002', { connections: 128, keepAliveTimeout: 4_000 })
}
const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'host'])
const MAX_BODY = 1_048_576

function backendOf (req) {
  const key = req.headers['x-user-id']
  if (typeof key !== 'string' || key.length === 0) return 'legacy'
  const h = murmur.x86.hash32(Buffer.concat([SALT, Buffer.from(key, 'utf8')]), 0)
  return h % 10_000 < THRESHOLD ? 'new' : 'legacy'
}

function copyHeaders (from) {
  const out = {}
  for (const k in from) if (!HOP.has(k)) out[k] = from[k]
  return out
}

function fail (res, status) {
  if (res.headersSent) { res.destroy(); return }
  res.writeHead(status, { 'content-type': 'application/json' })
  res.end('{"error":"upstream failed"}')
}

function forward (req, res, body) {
  const backend = backendOf(req)
  pools[backend].stream({ path: req.url, method: req.method, headers: copyHeaders(req.headers), body, opaque: res }, ({ statusCode, headers, opaque }) => {
    const h = copyHeaders(headers)
    h['x-dualtrack-backend'] = backend
    opaque.writeHead(statusCode, h)
    return opaque
  }, (err) => { if (err) fail(res, 502) })
}

const server = createServer((req, res) => {
  if (req.method === 'GET' || req.method === 'HEAD') { forward(req, res, null); return }
  // small bodies are buffered: cheaper than streaming them (PERF-NOTES)
  const chunks = []
  let size = 0
  req.on('data', (c) => {
    size += c.length
    if (size > MAX_BODY) { req.destroy(); fail(res, 413); return }
    chunks.push(c)
  })
  req.on('end', () => forward(req, res, chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size)))
})
server.keepAliveTimeout = 72_000
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  process.stdout.write(JSON.stringify({ port: server.address().port }) + '\n')
})

const close = () => {
  server.close()
  server.closeIdleConnections()
  Promise.all([pools.legacy.close(), pools.new.close()]).then(() => process.exit(0), () => process.exit(1))
}
process.once('SIGTERM', close)
process.once('SIGINT', close)
