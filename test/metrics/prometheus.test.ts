// a real Prometheus scrapes a real gateway; every query of the Grafana dashboard must parse and
// return data, and every alerting rule must load and evaluate healthy
import t from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync, writeFileSync, copyFileSync } from 'node:fs'
import { join } from 'node:path'
import { request, Agent } from 'undici'
import { startBackend } from '../helpers/backend.js'
import { startGatewayFromYaml, basicYaml, tempDir } from '../helpers/gateway.js'
import { waitFor } from '../helpers/wait.js'

interface Panel { title: string, type: string, targets?: { expr: string, refId: string }[], panels?: Panel[] }
interface Dashboard { panels: Panel[], templating: { list: { name: string, type: string, query: string | { query: string } }[] } }

async function startPrometheus (target: string, t: { teardown(fn: () => unknown): void }): Promise<string> {
  const dir = tempDir('dualtrack-prom-')
  copyFileSync('deploy/prometheus/alerts.yml', join(dir, 'alerts.yml'))
  writeFileSync(join(dir, 'prometheus.yml'), `
global: { scrape_interval: 1s, evaluation_interval: 1s }
rule_files: [alerts.yml]
scrape_configs:
  - job_name: dualtrack
    static_configs: [{ targets: ["${target}"] }]
`)
  for (let i = 0; i < 10; i++) {
    const port = 20_000 + Math.floor(Math.random() * 40_000)
    const p: ChildProcess = spawn('prometheus', [
      `--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'
    ], { stdio: ['ignore', 'ignore', 'pipe'] })
    let err = ''
    p.stderr?.on('data', (c: Buffer) => { err += c.toString() })
    const spawned = await new Promise<boolean>((resolve) => {
      p.once('error', () => resolve(false))
      p.once('spawn', () => resolve(true))
    })
    if (!spawned) throw new Error('prometheus is required for this test (apt-get install prometheus)')
    t.teardown(() => { p.kill('SIGKILL') })
    const url = `http://127.0.0.1:${port}`
    // ready, or exited (a port already in use): either ends the wait
    const state = await waitFor(async () => {
      if (p.exitCode !== null) return 'exited'
      const r = await request(url + '/-/ready')
      await r.body.dump()
      return r.statusCode === 200 ? 'ready' : undefined
    }, { timeoutMs: 30_000, what: `prometheus on port ${port} to be ready`, intervalMs: 100 })
    if (state === 'ready') return url
    p.kill('SIGKILL')
    if (!/address already in use/.test(err)) throw new Error(`prometheus did not start: ${err}`)
  }
  throw new Error('no free port for prometheus')
}

async function query (prom: string, expr: string) {
  const r = await request(`${prom}/api/v1/query?query=${encodeURIComponent(expr)}`)
  return await r.body.json() as { status: string, error?: string, data?: { result: unknown[] } }
}

interface Rule { name: string, health: string, lastError?: string }
const rulesOf = async (prom: string): Promise<Rule[]> => {
  const rules = await request(`${prom}/api/v1/rules`)
  const groups = (await rules.body.json() as { data: { groups: { rules: Rule[] }[] } }).data.groups
  return groups.flatMap((g) => g.rules)
}

const substitute = (e: string) => e
  .replaceAll('$rollout', 'checkout').replaceAll('${rollout}', 'checkout')
  .replaceAll('$route', 'orders').replaceAll('${route}', 'orders')
  .replaceAll('$__rate_interval', '1m').replaceAll('$__interval', '15s').replaceAll('$__range', '5m')

t.test('every dashboard query returns data from a real Prometheus', async (t) => {
  const legacy = await startBackend('legacy', t)
  const fresh = await startBackend('new', t)
  const routes = `  - name: whoami
    match: { prefix: /api/whoami }
    rollout: checkout
`
  // a staff segment, so the per-segment panel has a real series; a guard, so its verdict and p-values are scraped
  const rollout = `    attributes: { tier: [header:x-user-tier] }
    segments: [{ name: staff, when: [{ attribute: tier, op: IN, values: [staff] }], backend: new }]
    guard: { window: 2s, minRequests: 20, maxErrorRateDelta: 0.01, maxP99Ratio: 1.5 }
`
  const yaml = basicYaml(legacy.url, fresh.url, { routes, rollout }).replace(`  - name: orders
    match: { prefix: /api/orders }
    rollout: checkout`, `  - name: orders
    match: { prefix: /api/orders }
    rollout: checkout
    shadow: { percent: 100, methods: [GET] }`)
  const gw = await startGatewayFromYaml(yaml, t)
  const prom = await startPrometheus(new URL(gw.adminUrl).host, t)

  // traffic on both systems, on orders (shadowed) and payments, with and without keys
  const agent = new Agent({ connections: 8 })
  t.teardown(() => agent.close())
  let stop = false
  let sent = 0
  const load = Promise.all(Array.from({ length: 4 }, async (_, w) => {
    while (!stop) {
      const i = sent++
      const user = i % 10 === 0 ? undefined : `user-${i % 500}`
      const path = i % 3 === 0 ? '/api/payments' : '/api/orders/7'
      const r = await request(gw.url + path, { method: i % 3 === 0 ? 'POST' : 'GET', body: i % 3 === 0 ? '{}' : undefined, headers: { ...(user ? { 'x-user-id': user } : {}), ...(i % 7 === 0 ? { 'x-user-tier': 'staff' } : {}) }, dispatcher: agent })
      await r.body.dump()
      if (w === 0) await new Promise((resolve) => setTimeout(resolve, 2))
    }
  }))
  const d = JSON.parse(readFileSync('deploy/grafana/dualtrack.json', 'utf8')) as Dashboard
  const panels = d.panels.flatMap((p) => [p, ...(p.panels ?? [])])
  const exprsOf = () => panels.flatMap((p) => (p.targets ?? []).map((target) => substitute(target.expr)))
  // traffic runs until Prometheus has scraped enough for every query (rate() needs two scrapes
  // in its window) and every rule has been evaluated once: a condition, not a clock
  try {
    await waitFor(async () => {
      for (const expr of exprsOf()) {
        const res = await query(prom, expr)
        if (res.status !== 'success' || (res.data?.result.length ?? 0) === 0) throw new Error(`no data yet for ${expr}`)
      }
      const unevaluated = (await rulesOf(prom)).filter((r) => r.health === 'unknown')
      if (unevaluated.length > 0) throw new Error(`rules not evaluated yet: ${unevaluated.map((r) => r.name).join(', ')}`)
      return true
    }, { timeoutMs: 90_000, what: 'every dashboard query to return data and every rule to be evaluated', intervalMs: 1000 })
  } finally {
    stop = true
    await load
  }
  t.ok(sent > 200, `${sent} requests`)

  let exprs = 0
  for (const p of panels) {
    for (const target of p.targets ?? []) {
      exprs++
      const res = await query(prom, substitute(target.expr))
      t.equal(res.status, 'success', `${p.title} ${target.refId} parses${res.error ? `: ${res.error}` : ''}`)
      t.ok((res.data?.result.length ?? 0) > 0, `${p.title} ${target.refId} returns data: ${target.expr}`)
    }
  }
  t.ok(exprs >= 20, `${exprs} dashboard queries checked`)
  for (const v of d.templating.list.filter((x) => x.type === 'query')) {
    const q = typeof v.query === 'string' ? v.query : v.query.query
    const m = /label_values\((.+), (\w+)\)/.exec(q)
    t.ok(m, `variable ${v.name} is label_values()`)
    const r = await request(`${prom}/api/v1/label/${m?.[2]}/values?match[]=${encodeURIComponent(m?.[1] ?? '')}`)
    const body = await r.body.json() as { data: string[] }
    t.ok(body.data.length > 0, `variable ${v.name} has values: ${body.data.join(', ')}`)
  }
  const all = await rulesOf(prom)
  t.ok(all.length >= 7, `${all.length} rules loaded`)
  for (const r of all) t.equal(r.health, 'ok', `rule ${r.name} evaluates${r.lastError ? `: ${r.lastError}` : ''}`)
})
