// a real Prometheus scrapes two real gateways, one in namespace production (with traffic) and one
// in staging (whose state version differs); every query of the Grafana dashboard, with its
// variables substituted, must parse and return production's data and none of staging's, and every
// alerting rule must load and evaluate healthy
import t from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync, writeFileSync, copyFileSync } from 'node:fs'
import { join } from 'node:path'
import { request, Agent } from 'undici'
import { startBackend } from '../helpers/backend.js'
import { startGatewayFromYaml, basicYaml, tempDir } from '../helpers/gateway.js'
import { call, OPERATOR, TOKENS_YAML } from '../helpers/admin.js'
import { waitFor } from '../helpers/wait.js'

interface Target { expr: string, refId: string }
interface Panel { title: string, type: string, targets?: Target[], panels?: Panel[] }
interface Variable { name: string, type: string, query: string | { query: string } }
interface Dashboard { panels: Panel[], templating: { list: Variable[] }, annotations: { list: { name: string, expr?: string }[] } }
interface Sample { metric: Record<string, string>, value: [number, string] }

/** the scrape job, as the ServiceMonitor names it (the Service's name) */
const JOB = 'dualtrack'

async function startPrometheus (targets: { target: string, namespace: string }[], t: { teardown(fn: () => unknown): void }): Promise<string> {
  const dir = tempDir('dualtrack-prom-')
  copyFileSync('deploy/prometheus/alerts.yml', join(dir, 'alerts.yml'))
  // the namespace label the Prometheus Operator gives every target, set by hand
  writeFileSync(join(dir, 'prometheus.yml'), `
global: { scrape_interval: 1s, evaluation_interval: 1s }
rule_files: [alerts.yml]
scrape_configs:
  - job_name: ${JOB}
    static_configs:
${targets.map((x) => `      - { targets: ["${x.target}"], labels: { namespace: ${x.namespace} } }`).join('\n')}
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
  return await r.body.json() as { status: string, error?: string, data?: { result: Sample[] } }
}

interface Rule { name: string, health: string, lastError?: string }
const rulesOf = async (prom: string): Promise<Rule[]> => {
  const rules = await request(`${prom}/api/v1/rules`)
  const groups = (await rules.body.json() as { data: { groups: { rules: Rule[] }[] } }).data.groups
  return groups.flatMap((g) => g.rules)
}

/** what Grafana sends for one choice of the variables (a repeated row: one rollout, one route) */
const substitute = (e: string, v: { namespace: string, job?: string, rollout?: string, route?: string }) => e
  .replaceAll('$namespace', v.namespace).replaceAll('${namespace}', v.namespace)
  .replaceAll('$job', v.job ?? JOB).replaceAll('${job}', v.job ?? JOB)
  .replaceAll('$rollout', v.rollout ?? 'checkout').replaceAll('${rollout}', v.rollout ?? 'checkout')
  .replaceAll('$route', v.route ?? 'orders').replaceAll('${route}', v.route ?? 'orders')
  .replaceAll('$__rate_interval', '1m').replaceAll('$__interval', '15s').replaceAll('$__range', '5m')

t.test('every dashboard query returns data from a real Prometheus, for one namespace and job only', async (t) => {
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
  const yaml = basicYaml(legacy.url, fresh.url, { routes, rollout, top: TOKENS_YAML }).replace(`  - name: orders
    match: { prefix: /api/orders }
    rollout: checkout`, `  - name: orders
    match: { prefix: /api/orders }
    rollout: checkout
    shadow: { percent: 100, methods: [GET] }`)
  const production = await startGatewayFromYaml(yaml, t)
  const staging = await startGatewayFromYaml(yaml, t)
  // staging moves ahead two state versions: a spread across environments that is nobody's problem
  for (const percent of [20, 30]) t.equal((await call(staging.adminUrl, 'PUT', '/admin/rollouts/checkout', OPERATOR, { percent })).status, 200)
  const prom = await startPrometheus([
    { target: new URL(production.adminUrl).host, namespace: 'production' },
    { target: new URL(staging.adminUrl).host, namespace: 'staging' }
  ], t)

  // traffic on production's two systems, on orders (shadowed) and payments, with and without keys
  const agent = new Agent({ connections: 8 })
  t.teardown(() => agent.close())
  let stop = false
  let sent = 0
  const load = Promise.all(Array.from({ length: 4 }, async (_, w) => {
    while (!stop) {
      const i = sent++
      const user = i % 10 === 0 ? undefined : `user-${i % 500}`
      const path = i % 3 === 0 ? '/api/payments' : '/api/orders/7'
      const r = await request(production.url + path, { method: i % 3 === 0 ? 'POST' : 'GET', body: i % 3 === 0 ? '{}' : undefined, headers: { ...(user ? { 'x-user-id': user } : {}), ...(i % 7 === 0 ? { 'x-user-tier': 'staff' } : {}) }, dispatcher: agent })
      await r.body.dump()
      if (w === 0) await new Promise((resolve) => setTimeout(resolve, 2))
    }
  }))
  const d = JSON.parse(readFileSync('deploy/grafana/dualtrack.json', 'utf8')) as Dashboard
  const panels = d.panels.flatMap((p) => [p, ...(p.panels ?? [])])
  const exprsOf = () => panels.flatMap((p) => (p.targets ?? []).map((target) => substitute(target.expr, { namespace: 'production' })))
  // traffic runs until Prometheus has scraped enough for every query (rate() needs two scrapes
  // in its window), every rule has been evaluated once and staging's two changes are scraped:
  // a condition, not a clock
  try {
    await waitFor(async () => {
      for (const expr of exprsOf()) {
        const res = await query(prom, expr)
        if (res.status !== 'success' || (res.data?.result.length ?? 0) === 0) throw new Error(`no data yet for ${expr}`)
      }
      const unevaluated = (await rulesOf(prom)).filter((r) => r.health === 'unknown')
      if (unevaluated.length > 0) throw new Error(`rules not evaluated yet: ${unevaluated.map((r) => r.name).join(', ')}`)
      const ahead = (await query(prom, 'dualtrack_state_version{namespace="staging"} - on() dualtrack_state_version{namespace="production"}')).data?.result[0]?.value[1]
      if (ahead !== '2') throw new Error(`staging is ${ahead ?? 'not yet scraped'} versions ahead, not 2`)
      return true
    }, { timeoutMs: 90_000, what: 'every dashboard query to return data, every rule to be evaluated, both gateways scraped', intervalMs: 1000 })
  } finally {
    stop = true
    await load
  }
  t.ok(sent > 200, `${sent} requests`)

  let exprs = 0
  for (const p of panels) {
    for (const target of p.targets ?? []) {
      exprs++
      const res = await query(prom, substitute(target.expr, { namespace: 'production' }))
      t.equal(res.status, 'success', `${p.title} ${target.refId} parses${res.error ? `: ${res.error}` : ''}`)
      t.ok((res.data?.result.length ?? 0) > 0, `${p.title} ${target.refId} returns data: ${target.expr}`)
      // the same query for a namespace with no gateway: nothing, or the zero of an `or vector(0)`
      const elsewhere = await query(prom, substitute(target.expr, { namespace: 'nowhere' }))
      const leaked = (elsewhere.data?.result ?? []).filter((s) => Number(s.value[1]) !== 0 && !Number.isNaN(Number(s.value[1])))
      t.same(leaked, [], `${p.title} ${target.refId} is filtered by namespace`)
      const otherJob = await query(prom, substitute(target.expr, { namespace: 'production', job: 'other' }))
      t.same((otherJob.data?.result ?? []).filter((s) => Number(s.value[1]) !== 0 && !Number.isNaN(Number(s.value[1]))), [], `${p.title} ${target.refId} is filtered by job`)
    }
  }
  t.ok(exprs >= 25, `${exprs} dashboard queries checked`)
  for (const a of d.annotations.list) {
    if (a.expr === undefined) continue
    const res = await query(prom, substitute(a.expr, { namespace: 'production' }))
    t.equal(res.status, 'success', `annotation ${a.name} parses${res.error ? `: ${res.error}` : ''}`)
  }

  // the state version spread is per job: 0 in production and in staging, though staging is ahead
  const spread = panels.flatMap((p) => p.targets ?? []).find((x) => /max by \([^)]*job[^)]*\) \(dualtrack_state_version/.test(x.expr))
  t.ok(spread, 'a panel computes the state version spread per job')
  const one = await query(prom, substitute(spread?.expr ?? '', { namespace: 'production' }))
  t.same(one.data?.result.map((s) => s.value[1]), ['0'], 'production alone: no spread')
  const both = await query(prom, substitute(spread?.expr ?? '', { namespace: 'production|staging' }))
  t.same(both.data?.result.map((s) => [s.metric.namespace, s.value[1]]).sort(), [['production', '0'], ['staging', '0']], 'two environments side by side: no spread in either')
  const naive = await query(prom, 'max(dualtrack_state_version) - min(dualtrack_state_version)')
  t.same(naive.data?.result.map((s) => s.value[1]), ['2'], 'where a spread across environments would have shown 2')

  // the variables, each with the ones it depends on substituted
  const values = async (v: Variable, choice: { namespace: string }) => {
    const q = typeof v.query === 'string' ? v.query : v.query.query
    const m = /^label_values\((.+), (\w+)\)$/.exec(q)
    t.ok(m, `variable ${v.name} is label_values()`)
    const r = await request(`${prom}/api/v1/label/${m?.[2]}/values?match[]=${encodeURIComponent(substitute(m?.[1] ?? '', choice))}`)
    return (await r.body.json() as { data: string[] }).data
  }
  const vars = new Map(d.templating.list.filter((x) => x.type === 'query').map((v) => [v.name, v]))
  t.same([...vars.keys()].sort(), ['job', 'namespace', 'rollout', 'route'])
  t.same(await values(vars.get('namespace') as Variable, { namespace: '' }), ['production', 'staging'])
  t.same(await values(vars.get('job') as Variable, { namespace: 'production' }), [JOB])
  t.same(await values(vars.get('rollout') as Variable, { namespace: 'production' }), ['checkout'])
  t.same(await values(vars.get('route') as Variable, { namespace: 'production' }), ['orders', 'payments'])
  t.same(await values(vars.get('route') as Variable, { namespace: 'staging' }), [], 'staging served no request')

  const all = await rulesOf(prom)
  t.ok(all.length >= 12, `${all.length} rules loaded`)
  for (const r of all) t.equal(r.health, 'ok', `rule ${r.name} evaluates${r.lastError ? `: ${r.lastError}` : ''}`)
  // both gateways are up: the target-down alert has nothing to say
  const alerts = await request(`${prom}/api/v1/alerts`)
  const firing = (await alerts.body.json() as { data: { alerts: { labels: { alertname: string } }[] } }).data.alerts.map((a) => a.labels.alertname)
  t.notOk(firing.includes('DualtrackTargetDown'), 'DualtrackTargetDown is silent while both targets answer')
})
