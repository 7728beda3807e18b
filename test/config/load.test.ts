import t, { type Test } from 'tap'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { parseConfig, loadConfigFile, resolveConfigPath } from '../../src/config/index.js'

const GOOD = `
backends:
  legacy: { url: "http://127.0.0.1:4001" }
  new: { url: "\${NEW_URL:-http://127.0.0.1:4002}" }
rollouts:
  checkout:
    percent: 5
    cohortKey: [header:x-user-id]
    affinity: { learn: [json:$.orderId], lookup: [form:out_trade_no], ttl: 30d }
routes:
  - name: orders
    match: { prefix: /api/orders }
    rollout: checkout
`

function refused (t: Test, yaml: string, env: NodeJS.ProcessEnv, ...needles: (string | RegExp)[]) {
  let err: (Error & { code?: string }) | undefined
  try {
    parseConfig(yaml, 'bad.yaml', env)
  } catch (e) {
    err = e as Error & { code?: string }
  }
  t.ok(err, 'refused')
  for (const n of needles) t.match(err?.message, n)
  return err
}

t.test('a good file: defaults filled, env expanded, durations in ms, frozen', async (t) => {
  const c = parseConfig(GOOD, 'good.yaml', { NEW_URL: 'http://10.0.0.9:80' })
  t.equal(c.backends.new.url, 'http://10.0.0.9:80')
  t.equal(c.backends.legacy.timeoutMs, 10_000)
  t.equal(c.server.port, 8080)
  t.equal(c.server.bodyLimit, 1_048_576)
  t.equal(c.admin.host, '127.0.0.1')
  t.equal(c.state.store, 'file')
  t.equal(c.default, 'legacy')
  t.equal(c.rollouts.checkout?.salt, 'checkout', 'salt defaults to the rollout name')
  t.equal(c.rollouts.checkout?.affinity?.ttlMs, 30 * 86_400_000)
  t.equal(c.rollouts.checkout?.unkeyed, 'legacy')
  t.ok(Object.isFrozen(c) && Object.isFrozen(c.backends.legacy) && Object.isFrozen(c.routes[0]?.match))
  t.throws(() => { (c.server as { port: number }).port = 1 })
  const d = parseConfig(GOOD, 'good.yaml', {})
  t.equal(d.backends.new.url, 'http://127.0.0.1:4002', 'the default applies when unset')
})

t.test('a whole-value ${VAR} in a plain scalar is re-read as a number', async (t) => {
  const c = parseConfig(GOOD + 'server:\n  port: ${PORT:-8081}\n', 'x.yaml', { PORT: '9999' })
  t.equal(c.server.port, 9999)
})

t.test('each kind of bad file is refused with file, line and field', async (t) => {
  refused(t, GOOD + 'routes: [\n', {}, /bad\.yaml:\d+:\d+: YAML syntax error: Map keys must be unique/)
  refused(t, GOOD.replace('percent: 5', 'percent: [5'), {}, /bad\.yaml:\d+:\d+: YAML syntax error/)
  const unknown = refused(t, GOOD.replace('percent: 5', 'percent: 5\n    precent: 10'), {}, 'bad.yaml:8:5: rollouts.checkout.precent: unknown key', /allowed: percent, salt/, /example: checkout:/)
  t.equal(unknown?.code, 'DUALTRACK_ERR_CONFIG_INVALID')
  refused(t, GOOD.replace('percent: 5', 'percent: 150'), {}, 'bad.yaml:7:14: rollouts.checkout.percent: must be <= 100', 'example: percent: 5')
  refused(t, GOOD.replace('percent: 5', 'percent: 5.555'), {}, 'rollouts.checkout.percent: must have at most two decimals')
  refused(t, GOOD.replace('legacy: { url: "http://127.0.0.1:4001" }', 'legacy: { timeoutMs: 5 }'), {}, /bad\.yaml:3:\d+: backends\.legacy\.url: is required/, 'example: url: "http://127.0.0.1:4001"')
  const env = refused(t, GOOD.replace('"http://127.0.0.1:4001"', '"${LEGACY_URL}"'), {}, 'bad.yaml:3:18: backends.legacy.url: environment variable LEGACY_URL is not set and has no default', 'example: ${LEGACY_URL:-value}')
  t.equal(env?.code, 'DUALTRACK_ERR_CONFIG_ENV')
  refused(t, GOOD.replace('rollout: checkout', 'rollout: nope'), {}, /routes\[0\]\.rollout: no rollout named nope/)
  refused(t, GOOD.replace('ttl: 30d', 'ttl: soon'), {}, 'rollouts.checkout.affinity.ttl: must be a duration')
  refused(t, GOOD.replace('[header:x-user-id]', '[body:x]'), {}, 'rollouts.checkout.cohortKey[0]: must match pattern')
  refused(t, 'backends: 3', {}, /backends: must be object/)
  refused(t, GOOD.replace('    cohortKey: [header:x-user-id]', '    cohortKey: [header:x-user-id]\n    plan: { steps: [5, 10], hold: 1m }'), {}, 'rollouts.checkout.plan: a plan needs a guard to judge each step')
  refused(t, GOOD.replace('    cohortKey: [header:x-user-id]', '    cohortKey: [header:x-user-id]\n    guard: { window: 1m }\n    plan: { steps: [10, 5], hold: 1m }'), {}, 'rollouts.checkout.plan.steps: must rise step by step')
  refused(t, GOOD.replace('    cohortKey: [header:x-user-id]', '    cohortKey: [header:x-user-id]\n    force: { new: [a], legacy: [a] }'), {}, 'a is forced to both new and legacy')
})

t.test('--config beats DUALTRACK_CONFIG beats the default', async (t) => {
  t.equal(resolveConfigPath('/a.yaml', { DUALTRACK_CONFIG: '/b.yaml' }), '/a.yaml')
  t.equal(resolveConfigPath(undefined, { DUALTRACK_CONFIG: '/b.yaml' }), '/b.yaml')
  t.match(resolveConfigPath(undefined, {}), /config\/gateway\.yaml$/)
  t.throws(() => loadConfigFile('/nonexistent/x.yaml', {}), { code: 'DUALTRACK_ERR_CONFIG_NOT_FOUND' })
})

t.test('the shipped example configs are valid', async (t) => {
  const g = loadConfigFile('config/gateway.yaml', { DUALTRACK_OPERATOR_TOKEN: randomBytes(32).toString('hex'), DUALTRACK_VIEWER_TOKEN: randomBytes(32).toString('hex') })
  t.equal(g.rollouts.checkout?.percent, 5)
  const d = loadConfigFile('config/demo.yaml', {})
  t.ok(d.routes.length >= 2)
})

t.test('dualtrack start with a bad file exits 1 and prints the error', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'dualtrack-cfg-'))
  const file = join(dir, 'bad.yaml')
  writeFileSync(file, GOOD.replace('percent: 5', 'percent: 150'))
  const r = spawnSync(process.execPath, ['bin/dualtrack.js', 'start', '--config', file], { encoding: 'utf8', timeout: 20_000 })
  t.equal(r.status, 1)
  t.match(r.stderr, `${file}:7:14: rollouts.checkout.percent: must be <= 100`)
  const env = spawnSync(process.execPath, ['bin/dualtrack.js', 'start'], { encoding: 'utf8', timeout: 20_000, env: { ...process.env, DUALTRACK_CONFIG: file } })
  t.equal(env.status, 1, 'DUALTRACK_CONFIG picks the file')
  t.match(env.stderr, 'rollouts.checkout.percent')
})

t.test('the guard: confidence and scope are checked; scope follows the store', async (t) => {
  const guard = (g: string) => GOOD.replace('    cohortKey: [header:x-user-id]', `    cohortKey: [header:x-user-id]\n    guard: { window: 60s, minRequests: 200, maxErrorRateDelta: 0.01, ${g} }`)
  refused(t, guard('confidence: 1.2'), {}, /bad\.yaml:\d+:\d+: rollouts\.checkout\.guard\.confidence: must be < 1/, 'example: confidence: 0.99')
  refused(t, guard('scope: world'), {}, /rollouts\.checkout\.guard\.scope: must be one of fleet, replica/)
  const file = parseConfig(guard('maxP99Ratio: 1.5'), 'ok.yaml', {})
  t.match(file.rollouts.checkout?.guard, { confidence: 0.99, scope: 'replica', windowMs: 60_000 })
  const redis = parseConfig(guard('maxP99Ratio: 1.5') + 'state: { store: redis }\n', 'ok.yaml', {})
  t.equal(redis.rollouts.checkout?.guard?.scope, 'fleet', 'fleet by default with Redis')
  const mine = parseConfig(guard('scope: replica') + 'state: { store: redis }\n', 'ok.yaml', {})
  t.equal(mine.rollouts.checkout?.guard?.scope, 'replica')
})
