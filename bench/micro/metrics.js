// micro: what recording one request costs in prom-client
//   node bench/micro/metrics.js
// counter.labels(...).inc() looks the child up on every call; a child prepared once does not
import { bench, group, run, summary } from 'mitata'
import { Registry, Counter, Histogram } from 'prom-client'

const registry = new Registry()
const requests = new Counter({ name: 'bench_requests_total', help: 'requests', labelNames: ['route', 'backend', 'method', 'code'], registers: [registry] })
const duration = new Histogram({ name: 'bench_request_duration_seconds', help: 'duration', labelNames: ['route', 'backend'], buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers: [registry] })

const BACKENDS = ['legacy', 'new']
const CODES = ['200', '201', '404', '502']
const prepared = requests.labels('api', 'legacy', 'GET', '200')
const preparedHist = duration.labels('api', 'legacy')
let i = 0

summary(() => {
  group('counter', () => {
    bench('counter.labels(route, backend, method, code).inc()', () => { requests.labels('api', BACKENDS[++i & 1], 'GET', CODES[i & 3]).inc() })
    bench('counter.inc({ labels object })', () => { requests.inc({ route: 'api', backend: BACKENDS[++i & 1], method: 'GET', code: CODES[i & 3] }) })
    bench('prepared child .inc()', () => { prepared.inc() })
  })
})
summary(() => {
  group('histogram', () => {
    bench('histogram.labels(route, backend).observe(s)', () => { duration.labels('api', BACKENDS[++i & 1]).observe((i & 1023) / 1000) })
    bench('histogram.observe({ labels }, s)', () => { duration.observe({ route: 'api', backend: BACKENDS[++i & 1] }, (i & 1023) / 1000) })
    bench('prepared child .observe(s)', () => { preparedHist.observe((++i & 1023) / 1000) })
  })
})

// colors only on a terminal: the output is pasted into issues and results
await run({ colors: process.stdout.isTTY === true })
// a scrape, for scale: what GET /metrics costs with these series (mean of 200 after 20 warm-ups)
for (let k = 0; k < 20; k++) await registry.metrics()
const t0 = process.hrtime.bigint()
for (let k = 0; k < 200; k++) await registry.metrics()
const series = (await registry.getMetricsAsJSON()).reduce((n, m) => n + m.values.length, 0)
console.log(`registry.metrics() with ${series} series (histogram buckets included): ${(Number(process.hrtime.bigint() - t0) / 200 / 1000).toFixed(1)} µs per scrape`)

// what the gateway's request path records per request (dist/): metrics.request + metrics.decision,
// on prepared tallies (plain numbers; prom-client hears them at scrape time)
const { importDist } = await import('./dist.js')
const { createMetrics } = await importDist('metrics/index.js', ['createMetrics'])
const gm = createMetrics({ defaultMetrics: false })
const route = gm.route('api')
const rollout = gm.rollout('checkout')
const N = 2_000_000
// the request path hands over its Decision (reason percent at 50%: counted into the sample-ratio window)
const decisions = { legacy: { backend: 'legacy', reason: 'percent', bucket: 7000, threshold: 5000, segment: undefined }, new: { backend: 'new', reason: 'percent', bucket: 2000, threshold: 5000, segment: undefined } }
for (let round = 0; round < 3; round++) {
  const c0 = process.cpuUsage()
  for (let k = 0; k < N; k++) {
    const b = (k & 1) === 0 ? 'legacy' : 'new'
    gm.request(route, b, 'GET', 200, (k & 1023) / 100000, undefined)
    gm.decision(rollout, decisions[b])
  }
  const c = process.cpuUsage(c0)
  console.log(`dualtrack metrics.request() + metrics.decision() per request: ${((c.user + c.system) / N * 1000).toFixed(0)} ns CPU`)
}
