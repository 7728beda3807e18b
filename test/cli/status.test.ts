// status --timeout's exit codes, plan status/pause/resume, status --watch on a pseudo-terminal,
// and the demo started from another directory
import t from 'tap'
import { spawn } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { request } from 'undici'
import { OPERATOR, VIEWER, call } from '../helpers/admin.js'
import { BIN, cli, cliGateway as gateway, stateOf as state } from '../helpers/cli.js'
import { waitFor } from '../helpers/wait.js'

const PLAN = '    guard: { window: 60s, minRequests: 1000000 }\n    plan: { steps: [50, 100], hold: 1h }\n'

t.test('plan status, pause, resume; status --timeout exit codes', async (t) => {
  const gw = await gateway(t, { rollout: PLAN })
  const a = gw.adminUrl
  await waitFor(async () => ((await state(gw)).rollouts.checkout as unknown as { plan: unknown }).plan, { what: 'the plan started' })
  const st = await cli(a, VIEWER, 'plan', 'status', 'checkout')
  t.equal(st.code, 0, st.stderr)
  t.match(st.stdout, /checkout\s+1\/2 \(50%\)\s+running\s+50>100\s+\d+s/)
  t.match((await cli(a, OPERATOR, 'plan', 'pause')).stdout, /running \(paused\)/)
  t.match((await cli(a, OPERATOR, 'plan', 'checkout', 'resume')).stdout, /checkout\s+1\/2 \(50%\)\s+running\s+50>100/, 'the older order is accepted')

  // still moving when the time is up: 4
  const moving = await cli(a, VIEWER, 'status', '--timeout', '1s')
  t.equal(moving.code, 4, moving.stderr)
  t.match(moving.stdout, /still progressing after 1s\n$/)
  // rolled back: 3
  await cli(a, OPERATOR, 'rollback', '--reason', 'stop')
  const rolled = await cli(a, VIEWER, 'status', 'checkout', '--timeout', '30s')
  t.equal(rolled.code, 3)
  t.match(rolled.stdout, /rolled-back\n$/)
})

t.test('status --timeout on a rollout without a plan is healthy at once', async (t) => {
  const gw = await gateway(t)
  const r = await cli(gw.adminUrl, VIEWER, 'status', '--timeout', '30s', '--json')
  t.equal(r.code, 0)
  t.match(JSON.parse(r.stdout), { result: 'healthy', state: { rollouts: { checkout: { percent: 50 } } } })
})

t.test('status --watch redraws on a terminal and exits 0 on Ctrl-C', async (t) => {
  const gw = await gateway(t)
  // script(1) gives the CLI a pseudo-terminal; Ctrl-C typed into it reaches the CLI as SIGINT.
  // `exec` makes the CLI the terminal's foreground process, as an interactive shell's job control
  // does: without it dash (script's /bin/sh when SHELL is unset, as in CI) stays in the foreground
  // group, dies of the SIGINT itself, and script reports 130 whatever the CLI did
  const cmd = `exec ${process.execPath} ${BIN} status --watch --admin ${gw.adminUrl}`
  const p = spawn('script', ['-qefc', cmd, '/dev/null'], { env: { ...process.env, SHELL: '/bin/sh', DUALTRACK_TOKEN: VIEWER, TERM: 'xterm' }, stdio: ['pipe', 'pipe', 'pipe'] })
  let out = ''
  p.stdout.on('data', (c: Buffer) => { out += c.toString() })
  p.stderr.on('data', (c: Buffer) => { out += c.toString() })
  const exited = new Promise<number | null>((resolve) => p.on('exit', (code) => resolve(code)))
  t.teardown(() => { if (p.exitCode === null) p.kill('SIGKILL') })
  await waitFor(() => out.split('every 2s, Ctrl-C to stop').length >= 3, { what: 'two screens of status --watch', timeoutMs: 30_000 })
  t.match(out, '\x1b[H\x1b[2J', 'the screen is cleared before each redraw')
  t.match(out, /checkout\s+50%/)
  t.match(out, /last minute\r?\nrollout\s+split on new/)
  p.stdin.write('\x03')
  t.equal(await exited, 0, 'Ctrl-C ends the watch with exit 0')
})

t.test('dualtrack demo run outside the repository finds its bundled config', async (t) => {
  const dir = mkdtempSync(`${tmpdir()}/dualtrack-elsewhere-`)
  const p = spawn(process.execPath, [BIN, 'demo', '--port', '0', '--admin-port', '0'], { cwd: dir, env: { ...process.env, LOG_LEVEL: 'warn' }, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  p.stdout.on('data', (c: Buffer) => { out += c.toString() })
  p.stderr.on('data', (c: Buffer) => { out += c.toString() })
  t.teardown(() => { if (p.exitCode === null) p.kill('SIGKILL') })
  const m = await waitFor(() => /console {2}(http:\/\/\S+)\/ {3}open it[\s\S]*operator {2}(\S+)\n\s+viewer {4}(\S+)/.exec(out), { what: 'the demo banner', timeoutMs: 40_000 })
  const [, admin, operator, viewer] = m as unknown as [string, string, string, string]
  t.same((await call(admin, 'GET', '/admin/whoami', operator)).body, { name: 'demo-operator', role: 'operator' })
  t.same((await call(admin, 'GET', '/admin/whoami', viewer)).body, { name: 'demo-viewer', role: 'viewer' })
  const page = await request(admin + '/')
  t.equal(page.statusCode, 200)
  await page.body.dump()
  const exited = new Promise((resolve) => p.on('exit', resolve))
  p.kill('SIGTERM')
  await exited
})
