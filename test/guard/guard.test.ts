import t, { type Test } from 'tap'
import { join } from 'node:path'
import { request, Agent } from 'undici'
import { startBackend, type TestBackend } from '../helpers/backend.js'
import { startGatewayFromYaml, basicYaml, tempDir, type TestGateway } from '../helpers/gateway.js'
import { startRedis } from '../helpers/redis.js'
import { call, OPERATOR, VIEWER, TOKENS_YAML } from '../helpers/admin.js'
import { waitFor } from '../helpers/wait.js'

// eight gateways under load, each waiting on the guard's evidence: more than tap's 120 s per file
// on a busy 2-core machine
t.setTimeout(360_000)

const GUARD = (extra: string) => `    guard: { window: 3s, minRequests: 40, maxErrorRateDelta: 0.03, maxP99Ratio: 3${extra} }\n`

async function setup (t: Test, guardExtra = '', rolloutExtra = '', state = '') {
  const legacy = await startBackend('legacy', t)
  const fresh = await startBackend('new', t)
  // plans start from 5%
  const yaml = basicYaml(legacy.url, fresh.url, { top: TOKENS_YAML + state, rollout: GUARD(guardExtra) + rolloutExtra }).replace('percent: 50', rolloutExtra.includes('plan') ? 'percent: 5' : 'percent: 50')
  const gw = await startGatewayFromYaml(yaml, t)
  return { legacy, fresh, gw }
}

/** traffic from many users at a steady pace until stop() */
function traffic (gw: TestGateway, t: Test, perTick = 8, everyMs = 20) {
  const agent = new Agent({ connections: 16 })
  let i = 0
  let failed = 0
  let sent = 0
  const timer = setInterval(() => {
    for (let k = 0; k < perTick; k++) {
      sent++
      request(gw.url + '/api/orders', { headers: { 'x-user-id': `u${i++}` }, dispatcher: agent })
        .then((r) => r.body.dump()).catch(() => { failed++ })
    }
  }, everyMs)
  let stopped: Promise<void> | undefined
  const stop = () => (stopped ??= (async () => {
    clearInterval(timer)
    await new Promise((resolve) => setTimeout(resolve, 200))
    await agent.close()
  })())
  t.teardown(stop)
  return { stop, stats: () => ({ sent, failed }) }
}

function failSome (b: TestBackend, share: number, status = 500) {
  let n = 0
  b.handler = (_req, res) => {
    res.writeHead(n++ % Math.round(1 / share) === 0 ? status : 200, { 'content-type': 'application/json' })
    res.end('{}')
  }
}

async function rolledBackBy (gw: TestGateway, ms: number): Promise<number> {
  const started = Date.now()
  await waitFor(() => gw.app.state.doc.rollouts.checkout?.rollback !== null, { timeoutMs: ms, what: 'the guard to roll checkout back' })
  return Date.now() - started
}

t.test('a new system answering 20% 5xx is rolled back, with the numbers and p-values in the audit', async (t) => {
  const { fresh, gw } = await setup(t)
  const load = traffic(gw, t)
  await waitFor(() => gw.app.guardian.verdict('checkout')?.verdict === 'healthy', { what: 'a healthy verdict before the fault' })
  t.equal(gw.app.state.doc.rollouts.checkout?.rollback, null, 'healthy so far')
  failSome(fresh, 0.2)
  const took = await rolledBackBy(gw, 60_000)
  await load.stop()
  // guard.rollbackMode defaults to drain: orders new owns keep reaching it (issue 10)
  t.comment(`fault to automatic rollback: ${took} ms (window 3 s)`)
  const s = (await call(gw.adminUrl, 'GET', '/admin/state', VIEWER)).body
  t.match(s, { rollouts: { checkout: { rollback: { mode: 'drain', by: 'guard', reason: /^guard: new error rate .* over legacy's/ }, source: 'guard', updatedBy: 'guard' } } })
  const audit = (await call(gw.adminUrl, 'GET', '/admin/audit?limit=1', VIEWER)).body.entries as { actor: string, source: string, action: string, after: Record<string, unknown> }[]
  t.match(audit[0], { actor: 'guard', source: 'guard', action: 'rollback', after: { mode: 'drain', scope: 'replica', sample: 'window', newErrorRate: Number, legacyErrorRate: 0, newRequests: Number, legacyRequests: Number, errorRateLower: Number, errorRatePValue: Number } })
  t.ok((audit[0]?.after.errorRateLower as number) > 0.03, 'the lower confidence bound of the delta is past the margin')
  t.ok((audit[0]?.after.errorRatePValue as number) <= 0.01, 'and the adjusted p-value is at most 1 - confidence')
  const metrics = await (await request(gw.adminUrl + '/metrics')).body.text()
  t.match(metrics, 'dualtrack_auto_rollbacks_total{rollout="checkout"} 1')
  t.match(metrics, 'dualtrack_guard_verdict{rollout="checkout",verdict="breach"} 1', 'the breach stays the verdict while rolled back')
  t.match(metrics, 'dualtrack_guard_verdict{rollout="checkout",verdict="healthy"} 0')
  t.match(metrics, /dualtrack_guard_p_value\{rollout="checkout",check="error_rate"\} /)
})

t.test('a new system slower than the ratio is rolled back', async (t) => {
  const { fresh, gw } = await setup(t)
  // 250 ms against legacy's few: far past the 3x ratio even on a loaded machine
  fresh.handler = (_req, res) => { setTimeout(() => { res.writeHead(200); res.end('{}') }, 250) }
  const load = traffic(gw, t)
  const took = await rolledBackBy(gw, 60_000)
  await load.stop()
  t.comment(`rolled back after ${took} ms`)
  t.match(gw.app.state.doc.rollouts.checkout?.rollback?.reason, /new p99 \d+ ms is over 3 x legacy's p99 \d+ ms: \d+ of \d+ new requests/)
})

t.test('too few requests never trigger, whatever they answer', async (t) => {
  const { fresh, gw } = await setup(t)
  failSome(fresh, 1)
  const load = traffic(gw, t, 1, 100) // ~10 req/s: under minRequests 40 per side in 3 to 6 s
  // judged many times over with some failing requests in the sample, and never more than 40
  let looks = 0
  await waitFor(() => {
    const v = gw.app.guardian.verdict('checkout')
    if (v !== undefined && v.backends.new.errors > 0) looks++
    t.ok(v === undefined || v.backends.new.requests < 40, 'never 40 requests on new in one sample')
    return looks >= 30
  }, { what: '30 looks at a window with failures in it', timeoutMs: 30_000 })
  await load.stop()
  t.equal(gw.app.state.doc.rollouts.checkout?.rollback, null)
  t.match(gw.app.guardian.verdict('checkout'), { verdict: 'inconclusive', reasons: [/^inconclusive, \d+ of 40 requests on new/] })
  t.equal((await call(gw.adminUrl, 'GET', '/admin/guard')).status, 401, 'a viewer token is needed')
  const g = (await call(gw.adminUrl, 'GET', '/admin/guard', VIEWER)).body
  t.match(g, { rollouts: { checkout: { verdict: 'inconclusive', scope: 'replica', confidence: 0.99, window: { kind: 'window', ms: 3000 }, backends: { new: { requests: Number } }, errorRate: { delta: Number, lower: Number, upper: Number, pValue: Number }, latency: { pValue: Number } } } })
})

t.test('4xx do not count; a healthy system is never rolled back over a long run', async (t) => {
  const { fresh, legacy, gw } = await setup(t)
  failSome(fresh, 0.5, 404)
  failSome(legacy, 0.5, 404)
  const load = traffic(gw, t)
  await waitFor(() => load.stats().sent > 2000, { what: '2,000 requests', timeoutMs: 60_000 })
  await load.stop()
  t.equal(gw.app.state.doc.rollouts.checkout?.rollback, null, 'never rolled back')
  t.match(gw.app.guardian.verdict('checkout'), { verdict: 'healthy', backends: { new: { errors: 0 }, legacy: { errors: 0 } } })
})

const PLAN = '    plan: { steps: [5, 10, 25, 50, 100], hold: 400ms }\n'

t.test('a healthy rollout walks its plan from 5 to 100', async (t) => {
  const { gw } = await setup(t, '', PLAN)
  const load = traffic(gw, t)
  const seen: number[] = []
  await waitFor(() => {
    const p = gw.app.state.doc.rollouts.checkout?.percent as number
    if (seen.at(-1) !== p) seen.push(p)
    return gw.app.state.doc.rollouts.checkout?.plan?.state === 'done'
  }, { what: 'the plan to finish', timeoutMs: 60_000 })
  await load.stop()
  t.same(seen, [5, 10, 25, 50, 100], 'every step, in order')
  const audit = (await call(gw.adminUrl, 'GET', '/admin/audit?limit=20', VIEWER)).body.entries as { actor: string, action: string, after: unknown }[]
  const steps = audit.filter((e) => e.actor === 'plan' && e.action === 'set-percent').map((e) => e.after).reverse()
  t.same(steps, [10, 25, 50, 100], 'each advance audited with actor plan (5 was already in force)')
  t.match((await call(gw.adminUrl, 'GET', '/admin/state', VIEWER)).body, { rollouts: { checkout: { percent: 100, plan: { state: 'done', steps: [5, 10, 25, 50, 100] } } } })
})

t.test('an unhealthy rollout stops its plan and rolls back; pause and resume', async (t) => {
  const { fresh, gw } = await setup(t, '', PLAN.replace('400ms', '3s'))
  const load = traffic(gw, t)
  await waitFor(() => gw.app.state.doc.rollouts.checkout?.plan != null, { what: 'the plan to start' })
  t.equal(gw.app.state.doc.rollouts.checkout?.percent, 5, 'the plan started at its first step')
  const paused = await call(gw.adminUrl, 'POST', '/admin/rollouts/checkout/plan/pause', OPERATOR, {})
  t.equal(paused.status, 200)
  t.match(paused.body, { rollouts: { checkout: { plan: { paused: true } } } })
  t.equal((await call(gw.adminUrl, 'POST', '/admin/rollouts/checkout/plan/resume', VIEWER, {})).status, 403)
  t.equal((await call(gw.adminUrl, 'POST', '/admin/rollouts/checkout/plan/jump', OPERATOR, {})).status, 400)
  t.match((await call(gw.adminUrl, 'POST', '/admin/rollouts/checkout/plan/resume', OPERATOR, {})).body, { rollouts: { checkout: { plan: { paused: false, state: 'running' } } } })
  failSome(fresh, 0.5)
  // at 5% the new side is too quiet for the 1.5 s window: the plan's judgment of the 3 s hold trips it
  await rolledBackBy(gw, 30_000)
  await load.stop()
  const r = gw.app.state.doc.rollouts.checkout
  t.equal(r?.plan?.state, 'stopped')
  t.equal(r?.percent, 5, 'it never advanced')
  t.match(r?.plan?.note, /^rolled back: guard: new error rate/)
})

t.test('a plan at 5% with too little traffic waits, inconclusive, and never advances', async (t) => {
  const { gw } = await setup(t, '', PLAN.replace('400ms', '300ms'))
  const load = traffic(gw, t, 1, 50) // ~20 req/s, ~1 a second on new: far from 40 a hold
  await waitFor(() => gw.app.state.doc.rollouts.checkout?.plan?.state === 'waiting', { what: 'the plan to wait' })
  t.match(gw.app.state.doc.rollouts.checkout?.plan?.note, /^waiting: inconclusive, \d+ of 40 requests on new(, \d+ of 40 requests on legacy)? \(step 1\)$/)
  // many holds later, with traffic still coming, it has not moved
  await waitFor(() => (gw.app.guardian.verdict('checkout')?.backends.legacy.requests ?? 0) >= 200, { what: '200 legacy requests in the step', timeoutMs: 60_000 })
  await load.stop()
  const r = gw.app.state.doc.rollouts.checkout
  t.equal(r?.percent, 5, 'never advanced')
  t.equal(r?.plan?.state, 'waiting')
  t.match(gw.app.guardian.verdict('checkout'), { verdict: 'inconclusive', window: { kind: 'hold' } })
  const audit = (await call(gw.adminUrl, 'GET', '/admin/audit?limit=50', VIEWER)).body.entries as { actor: string, action: string }[]
  t.equal(audit.filter((e) => e.actor === 'plan' && e.action === 'set-percent').length, 0, 'no step was taken')
})

t.test('two replicas on Redis never both apply a step', async (t) => {
  const redis = await startRedis(t)
  const state = (i: number) => `\nstate: { store: redis, file: "${join(tempDir(), `c${i}.json`)}", redis: { url: "${redis.url}", prefix: "plan${process.pid}:" } }\n`
  const a = await setup(t, '', PLAN, state(1))
  const b = await setup(t, '', PLAN, state(2))
  const la = traffic(a.gw, t)
  const lb = traffic(b.gw, t)
  await waitFor(() => a.gw.app.state.doc.rollouts.checkout?.plan?.state === 'done', { what: 'the plan to finish on both', timeoutMs: 60_000 })
  await la.stop()
  await lb.stop()
  const audit = (await call(a.gw.adminUrl, 'GET', '/admin/audit?limit=100', VIEWER)).body.entries as { actor: string, action: string, after: unknown }[]
  const steps = audit.filter((e) => e.actor === 'plan' && (e.action === 'set-percent' || e.action === 'plan-start')).map((e) => e.action === 'plan-start' ? 'start' : e.after).reverse()
  t.same(steps, ['start', 10, 25, 50, 100], 'one start and each step exactly once across both replicas')
  t.equal(b.gw.app.state.doc.rollouts.checkout?.percent, 100, 'the other replica follows')
})
