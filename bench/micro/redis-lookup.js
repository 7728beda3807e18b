// micro: what one affinity lookup of an id Redis does not know costs the gateway's process in CPU,
// against a real redis-server (started here on a random port, pinned apart from this process)
//   npm run build && node bench/micro/redis-lookup.js
// Each variant issues BATCH lookups in one event-loop turn (the bench's get-1k sends ~8 per read),
// waits for all, and repeats until LOOKUPS lookups; CPU is process.cpuUsage (user + sys, every
// thread of this process: GC helpers and libuv included) over those lookups. Variants run in
// interleaved rounds (order rotated), medians printed: compare within one run only.
//   REDIS_LOOKUP_BATCH (8), REDIS_LOOKUP_N (40000), REDIS_LOOKUP_ROUNDS (5)
//   BENCH_BASELINE_DIST=<dist/ of another build>: its Affinity and RedisStore measured in the same rounds
import { spawn, spawnSync } from 'node:child_process'
import { connect } from 'node:net'
import { setImmediate } from 'node:timers'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import pino from 'pino'
import { pathToFileURL } from 'node:url'
import { importDist } from './dist.js'
import { randomHighPort } from '../lib/ports.js'

const BATCH = Number(process.env.REDIS_LOOKUP_BATCH ?? 8)
const N = Number(process.env.REDIS_LOOKUP_N ?? 40_000)
const ROUNDS = Number(process.env.REDIS_LOOKUP_ROUNDS ?? 5)

const { parseConfig } = await importDist('config/index.js', ['parseConfig'])
const { createMetrics } = await importDist('metrics/index.js', ['createMetrics'])
const { Affinity, createStateStore } = await importDist('state/index.js', ['Affinity', 'createStateStore'])
const { createRedisClient, redisConnectionOf } = await importDist('state/redis-client.js', ['createRedisClient', 'redisConnectionOf'])

// redis-server on another core than this process when there are two (as the bench does)
const dir = mkdtempSync(join(tmpdir(), 'redis-lookup-'))
const port = await randomHighPort()
const taskset = spawnSync('taskset', ['-V']).status === 0
const redisArgs = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir]
const redis = taskset ? spawn('taskset', ['-c', '1', 'redis-server', ...redisArgs], { stdio: 'ignore' }) : spawn('redis-server', redisArgs, { stdio: 'ignore' })
const stop = () => { try { redis.kill('SIGTERM') } catch { /* gone already */ } rmSync(dir, { recursive: true, force: true }) }
process.on('exit', stop)
if (taskset) spawnSync('taskset', ['-p', '-c', '0', String(process.pid)], { stdio: 'ignore' })
for (let i = 0; ; i++) {
  const ok = await new Promise((resolve) => { const s = connect({ port, host: '127.0.0.1' }, () => { s.end(); resolve(true) }); s.on('error', () => resolve(false)) })
  if (ok) break
  if (i > 100) throw new Error('redis-server did not start')
  await new Promise((resolve) => setTimeout(resolve, 50))
}
const url = `redis://127.0.0.1:${port}`

// the gateway's own parts, as dualtrack start builds them for the bench's dualtrack-redis-affinity
const yamlText = `
backends: { legacy: { url: "http://127.0.0.1:1" }, new: { url: "http://127.0.0.1:2" } }
state: { store: redis, file: "${join(dir, 'state.json')}", redis: { url: "${url}", prefix: "dualtrack-bench:" } }
rollouts:
  checkout:
    percent: 50
    salt: bench
    cohortKey: [header:x-user-id]
    affinity: { learn: [json:$.orderId], lookup: [path:/api/orders/:orderId], ttl: 1h }
routes: [{ name: api, match: { prefix: / }, rollout: checkout }]
`
const cfg = parseConfig(yamlText, 'bench.yaml')
const log = pino({ level: 'silent' })
const store = await createStateStore(cfg, log)
const affinity = new Affinity(cfg, store, createMetrics({ defaultMetrics: false }), log)
const a = affinity.of('checkout')
// the same parts from another build, on their own connections
let base
if (process.env.BENCH_BASELINE_DIST) {
  const imp = (f) => import(pathToFileURL(join(process.env.BENCH_BASELINE_DIST, f)).href)
  const st = await imp('state/index.js')
  const bcfg = (await imp('config/index.js')).parseConfig(yamlText, 'bench.yaml')
  const bstore = await st.createStateStore(bcfg, log)
  const baff = new st.Affinity(bcfg, bstore, (await imp('metrics/index.js')).createMetrics({ defaultMetrics: false }), log)
  base = { store: bstore, affinity: baff, a: baff.of('checkout') }
}
const conn = redisConnectionOf(cfg.state.redis)
const clients = {
  // the affinity connection's options (autoPipeline, 500 ms command timeout, no offline queue)
  asShipped: createRedisClient(conn, { autoPipeline: true }),
  noTimeout: createRedisClient(conn, { autoPipeline: true, commandTimeoutMs: null }),
  noPipeline: createRedisClient(conn, {}),
  plain: new Redis(url, { lazyConnect: true })
}
for (const c of Object.values(clients)) await c.connect()

// every id unknown and never asked before (the negative cache never answers)
let seq = 0
const nextId = () => `o${process.pid}-${++seq}`
const key = (id) => `dualtrack-bench:aff:checkout:${id}`

// a hand-written RESP pipeline on one socket: the floor (socket writes and reads, no client library)
function rawClient () {
  const sock = connect({ port, host: '127.0.0.1' })
  sock.setNoDelay(true)
  const waiting = []
  let buf = ''
  sock.setEncoding('latin1')
  sock.on('data', (d) => {
    buf += d
    // every answer here is $-1\r\n (a missing key) or $<n>\r\n<v>\r\n
    let i = 0
    while (i < buf.length) {
      const nl = buf.indexOf('\r\n', i)
      if (nl === -1) break
      const len = Number(buf.slice(i + 1, nl))
      if (len < 0) { waiting.shift()(null); i = nl + 2; continue }
      if (buf.length < nl + 2 + len + 2) break
      waiting.shift()(buf.slice(nl + 2, nl + 2 + len))
      i = nl + 2 + len + 2
    }
    buf = buf.slice(i)
  })
  let out = ''
  let scheduled = false
  const flush = () => { scheduled = false; sock.write(out); out = '' }
  return {
    ready: new Promise((resolve) => sock.once('connect', resolve)),
    get (k) {
      out += `*2\r\n$3\r\nGET\r\n$${Buffer.byteLength(k)}\r\n${k}\r\n`
      if (!scheduled) { scheduled = true; setImmediate(flush) }
      return new Promise((resolve) => waiting.push(resolve))
    },
    close () { sock.destroy() }
  }
}
const raw = rawClient()
await raw.ready

// each variant: issue one batch of lookups, return a promise of all of them
const VARIANTS = {
  'Affinity.ownerOf (as shipped: store, caches, coalescing, promise chain)': () => {
    const ps = new Array(BATCH)
    for (let i = 0; i < BATCH; i++) ps[i] = affinity.ownerOf('checkout', a, nextId())
    return Promise.all(ps)
  },
  ...(base === undefined
    ? {}
    : {
        'BASELINE build: Affinity.ownerOf': () => {
          const ps = new Array(BATCH)
          for (let i = 0; i < BATCH; i++) ps[i] = base.affinity.ownerOf('checkout', base.a, nextId())
          return Promise.all(ps)
        },
        'BASELINE build: RedisStore.getOwner alone': () => {
          const ps = new Array(BATCH)
          for (let i = 0; i < BATCH; i++) ps[i] = base.store.getOwner('checkout', nextId())
          return Promise.all(ps)
        }
      }),
  'RedisStore.getOwner alone': () => {
    const ps = new Array(BATCH)
    for (let i = 0; i < BATCH; i++) ps[i] = store.getOwner('checkout', nextId())
    return Promise.all(ps)
  },
  'ioredis GET, auto-pipelined, 500 ms commandTimeout (the affinity client)': () => {
    const ps = new Array(BATCH)
    for (let i = 0; i < BATCH; i++) ps[i] = clients.asShipped.get(key(nextId()))
    return Promise.all(ps)
  },
  'ioredis GET, auto-pipelined, no commandTimeout': () => {
    const ps = new Array(BATCH)
    for (let i = 0; i < BATCH; i++) ps[i] = clients.noTimeout.get(key(nextId()))
    return Promise.all(ps)
  },
  'ioredis GET, not pipelined, 500 ms commandTimeout': () => {
    const ps = new Array(BATCH)
    for (let i = 0; i < BATCH; i++) ps[i] = clients.noPipeline.get(key(nextId()))
    return Promise.all(ps)
  },
  'ioredis MGET of the batch (one command), no commandTimeout': () => {
    const ks = new Array(BATCH)
    for (let i = 0; i < BATCH; i++) ks[i] = key(nextId())
    return clients.plain.mget(ks)
  },
  'raw RESP GETs on a socket, one write per turn (no client library)': () => {
    const ps = new Array(BATCH)
    for (let i = 0; i < BATCH; i++) ps[i] = raw.get(key(nextId()))
    return Promise.all(ps)
  }
}
const names = Object.keys(VARIANTS)

async function measure (fn, lookups) {
  const batches = Math.ceil(lookups / BATCH)
  const c0 = process.cpuUsage()
  const t0 = process.hrtime.bigint()
  for (let b = 0; b < batches; b++) await fn()
  const c = process.cpuUsage(c0)
  const wall = Number(process.hrtime.bigint() - t0) / 1000
  return { cpu: (c.user + c.system) / (batches * BATCH), wall: wall / (batches * BATCH) }
}

// warm every path (JIT) before measuring
for (const n of names) await measure(VARIANTS[n], 5_000)
const res = Object.fromEntries(names.map((n) => [n, []]))
for (let r = 0; r < ROUNDS; r++) {
  for (let k = 0; k < names.length; k++) {
    const n = names[(k + r) % names.length]
    res[n].push(await measure(VARIANTS[n], N))
  }
}
const median = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]
console.log(`CPU µs per lookup of an unknown id, ${BATCH} lookups per event-loop turn, ${N} per round, median (min–max) of ${ROUNDS} interleaved rounds; wall µs per lookup last`)
for (const n of names) {
  const cpu = res[n].map((x) => x.cpu)
  console.log(`${median(cpu).toFixed(2).padStart(7)} (${Math.min(...cpu).toFixed(2)}–${Math.max(...cpu).toFixed(2)})  wall ${median(res[n].map((x) => x.wall)).toFixed(2).padStart(6)}  ${n}`)
}

raw.close()
for (const c of Object.values(clients)) c.disconnect()
await affinity.close()
await store.close()
if (base) { await base.affinity.close(); await base.store.close() }
stop()
