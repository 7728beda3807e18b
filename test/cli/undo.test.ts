// `dualtrack undo` on segment and plan changes, through the real CLI against a real gateway:
// segment percents come back from the audit's "before"; a plan step is undone by pausing the plan
// and putting the percent back; a change with no inverse is refused, naming why, and changes nothing
import t, { type Test } from 'tap'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { request, Agent } from 'undici'
import { startBackend } from '../helpers/backend.js'
import { startGatewayFromYaml, basicYaml, type TestGateway } from '../helpers/gateway.js'
import { OPERATOR, VIEWER, TOKENS_YAML, call } from '../helpers/admin.js'
import { cli } from '../helpers/cli.js'
import { waitFor } from '../helpers/wait.js'

interface Entry { actor: string, action: string, before: unknown, after: unknown, reason: string | null }
interface Rollout { percent: number, segments?: Record<string, number>, plan: { step: number, paused: boolean, state: string } | null }

const SEGMENTS = `    attributes:
      registeredAt: [header:x-user-registered-at]
    segments:
      - name: new-signups
        when: [{ attribute: registeredAt, op: DATE_AFTER, value: "2026-11-01T00:00:00Z" }]
        percent: 10
`
// the guard judges each 12 s hold on a few dozen requests a side; 50% is the plan's first step. The
// hold is long so that the undo below comes before the next hold ends (a plan-wait), even on a busy machine
const PLAN = `    guard: { window: 2s, minRequests: 20, maxErrorRateDelta: 0.5, maxP99Ratio: 50 }
    plan: { steps: [50, 75, 100], hold: 12s }
`

async function gateway (t: Test, rollout: string): Promise<TestGateway> {
  const legacy = await startBackend('legacy', t)
  const fresh = await startBackend('new', t)
  const dir = mkdtempSync(`${tmpdir()}/dualtrack-undo-`)
  const yaml = `${basicYaml(legacy.url, fresh.url, { top: TOKENS_YAML, rollout })}\nstate: { store: file, file: "${dir}/state.json" }\n`
  writeFileSync(`${dir}/gateway.yaml`, yaml)
  return startGatewayFromYaml(yaml, t, {}, `${dir}/gateway.yaml`)
}

const rollout = async (gw: TestGateway) => ((await call(gw.adminUrl, 'GET', '/admin/state', VIEWER)).body.rollouts as Record<string, Rollout>).checkout as Rollout
const audit = async (gw: TestGateway, limit = 5) => (await call(gw.adminUrl, 'GET', `/admin/audit?limit=${limit}`, VIEWER)).body.entries as Entry[]

t.test('undo restores segment percents, and refuses the first state', async (t) => {
  const gw = await gateway(t, SEGMENTS)
  const a = gw.adminUrl

  const first = await cli(a, OPERATOR, 'undo', 'checkout')
  t.equal(first.code, 1)
  t.equal(first.stderr, 'dualtrack undo: cannot undo the last change of checkout: init is checkout\'s first state, from the YAML: there is nothing before it\n')
  t.equal((await audit(gw)).length, 1, 'a refusal changes nothing')

  t.equal((await cli(a, OPERATOR, 'set', 'checkout', '40', '--segment', 'new-signups', '--reason', 'signups look fine')).code, 0)
  t.same((await rollout(gw)).segments, { 'new-signups': 40 })
  const u = await cli(a, OPERATOR, 'undo', 'checkout')
  t.equal(u.code, 0, u.stderr)
  t.match(u.stdout, /^undid set-segments by oncall at \S+ \(\{"new-signups":40\} -> \{"new-signups":10\}\)/)
  t.same((await rollout(gw)).segments, { 'new-signups': 10 }, 'the previous percent is back')
  t.equal((await rollout(gw)).percent, 50, 'nothing else moved')
  t.match((await audit(gw, 1))[0], { actor: 'oncall', action: 'set-segments', before: { 'new-signups': 40 }, after: { 'new-signups': 10 }, reason: /^undo set-segments by oncall at / })

  // the undo is a change like any other: undoing it puts 40 back
  t.equal((await cli(a, OPERATOR, 'undo', '--rollout', 'checkout', '--reason', 'back to 40')).code, 0)
  t.same((await rollout(gw)).segments, { 'new-signups': 40 })
  t.match((await audit(gw, 1))[0], { reason: 'back to 40' })

  const viewer = await cli(a, VIEWER, 'undo', 'checkout')
  t.equal(viewer.code, 1)
  t.match(viewer.stderr, /^dualtrack undo: 403 DUALTRACK_ERR_FORBIDDEN /)
  t.same((await rollout(gw)).segments, { 'new-signups': 40 }, 'a viewer changes nothing')
})

t.test('undo of plan changes: start → pause, pause → resume, a step → pause and the percent back, a wait refused', async (t) => {
  const gw = await gateway(t, PLAN)
  const a = gw.adminUrl
  await waitFor(async () => (await audit(gw, 1))[0]?.action === 'plan-start', { what: 'the plan to start', timeoutMs: 30_000 })
  t.match(await rollout(gw), { percent: 50, plan: { step: 0, paused: false } })

  // no API removes a plan the YAML names (the guard would start it again): pausing is the inverse
  const start = await cli(a, OPERATOR, 'undo', 'checkout')
  t.equal(start.code, 0, start.stderr)
  t.match(start.stdout, /^undid plan-start by plan at \S+ \(\{"step":0,"steps":\[50,75,100\]\} -> null\)\na started plan cannot be unstarted while the YAML names it \(the guard would start it again\): paused at step 1\/3\n/)
  t.match(await rollout(gw), { percent: 50, plan: { paused: true } })
  t.match((await audit(gw, 1))[0], { actor: 'oncall', action: 'plan-pause' })

  const pause = await cli(a, OPERATOR, 'undo', 'checkout')
  t.equal(pause.code, 0, pause.stderr)
  t.match(await rollout(gw), { plan: { paused: false, state: 'running' } }, 'undo of a pause resumes')

  // traffic until the plan takes its step to 75, then none: the next step cannot come
  const agent = new Agent({ connections: 8 })
  t.teardown(() => agent.close())
  let user = 0
  let on = true
  const load = (async () => {
    while (on) {
      await Promise.all(Array.from({ length: 8 }, async () => {
        const r = await request(`${gw.url}/api/orders`, { headers: { 'x-user-id': `u${user++}` }, dispatcher: agent })
        await r.body.dump()
      }))
      // paces the load loop (light traffic until the plan steps); nothing is asserted after it
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  })()
  await waitFor(async () => (await rollout(gw)).percent === 75, { what: 'the plan\'s step to 75', timeoutMs: 60_000 })
  on = false
  await load
  t.match((await audit(gw, 1))[0], { actor: 'plan', action: 'set-percent', before: 50, after: 75 })

  const step = await cli(a, OPERATOR, 'undo', 'checkout')
  t.equal(step.code, 0, step.stderr)
  t.match(step.stdout, /^undid set-percent by plan at \S+ \(75 -> 50\)\nthe plan is paused at step 2\/3 with 50%; `dualtrack plan resume checkout` goes on from there/)
  t.match(await rollout(gw), { percent: 50, plan: { step: 1, paused: true } }, 'the percent is back and the plan holds it there')
  const two = await audit(gw, 2)
  t.match(two, [
    { actor: 'oncall', action: 'set-percent', before: 75, after: 50, reason: /^undo set-percent by plan at / },
    { actor: 'oncall', action: 'plan-pause' }
  ], 'paused first, then the percent put back')

  // resumed with no traffic, the hold ends inconclusive: the plan waits, which is not a change to undo
  t.equal((await cli(a, OPERATOR, 'plan', 'resume', 'checkout')).code, 0)
  await waitFor(async () => (await audit(gw, 1))[0]?.action === 'plan-wait', { what: 'the plan to wait for traffic', timeoutMs: 60_000 })
  const wait = await cli(a, OPERATOR, 'undo', 'checkout')
  t.equal(wait.code, 1)
  t.match(wait.stderr, /^dualtrack undo: cannot undo the last change of checkout: plan-wait is the plan's own state \(waiting: .*\), not a change to revert: `dualtrack plan pause checkout` stops it\n$/)
  t.equal((await audit(gw, 1))[0]?.action, 'plan-wait', 'a refusal changes nothing')
})
