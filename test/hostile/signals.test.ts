// signals as nginx and Prometheus take them (DESIGN.md §7): SIGHUP re-reads the YAML and keeps
// serving (before: dualtrack start shut down), and fatal signals are never trapped, so a crash ends
// the process for its supervisor (before: close-with-grace caught SIGSEGV, SIGABRT... and a native
// crash during shutdown looped SIGSEGV -> handler -> SIGSEGV at 100% CPU)
import t, { type Test } from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { request } from 'undici'
import { startBackend } from '../helpers/backend.js'
import { basicYaml, tempDir } from '../helpers/gateway.js'
import { spawnGateway } from '../helpers/process.js'
import { waitFor } from '../helpers/wait.js'

async function gateway (t: Test, percent = 50) {
  const legacy = await startBackend('legacy', t)
  const fresh = await startBackend('new', t)
  const dir = tempDir()
  const file = join(dir, 'gateway.yaml')
  const write = (p: number) => writeFileSync(file, basicYaml(legacy.url, fresh.url).replace('percent: 50', `percent: ${p}`) + `
server: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0 }
state: { store: file, file: "${join(dir, 'state.json')}" }
`)
  write(percent)
  return { g: await spawnGateway(file, t), write }
}

async function reloads (adminUrl: string): Promise<number> {
  const text = await (await request(adminUrl + '/metrics')).body.text()
  return Number(/^dualtrack_config_reloads_total\{result="success"\} (\d+)/m.exec(text)?.[1] ?? 0)
}

t.test('SIGHUP re-reads the YAML like POST /admin/reload, is counted, and the gateway keeps serving', async (t) => {
  const { g } = await gateway(t)
  const before = await reloads(g.adminUrl)
  g.proc.kill('SIGHUP')
  await waitFor(async () => (await reloads(g.adminUrl)) === before + 1, { what: 'dualtrack_config_reloads_total{result="success"} up by one' })
  t.equal(g.proc.exitCode, null, 'still running')
  t.equal(g.proc.signalCode, null)
  const r = await request(g.url + '/api/orders/1', { headers: { 'x-user-id': 'qa-user-1' } })
  t.equal(r.statusCode, 200, 'still serving')
  await r.body.dump()
  // log lines are buffered up to a second
  await waitFor(() => /"signal":"SIGHUP".*"msg":"reloading the config"/.test(g.output()), { what: 'the reload logged with its signal' })
  g.proc.kill('SIGHUP')
  await waitFor(async () => (await reloads(g.adminUrl)) === before + 2, { what: 'a second SIGHUP reloads again (it is not "exit now")' })
  t.equal(await g.stop('SIGTERM'), 0, 'SIGTERM still drains and exits 0')
})

t.test('a SIGHUP with a bad file is refused and counted as a failure; the last good config stays', async (t) => {
  const { g } = await gateway(t)
  const failures = async () => Number(/^dualtrack_config_reloads_total\{result="failure"\} (\d+)/m.exec(await (await request(g.adminUrl + '/metrics')).body.text())?.[1] ?? 0)
  const before = await failures()
  const { writeFileSync: w } = await import('node:fs')
  const file = /"config":"([^"]+)"/.exec(g.output())?.[1] as string
  w(file, 'rollouts: [this is not a map')
  g.proc.kill('SIGHUP')
  await waitFor(async () => (await failures()) > before, { what: 'a refused reload counted' })
  const r = await request(g.url + '/api/orders/1', { headers: { 'x-user-id': 'qa-user-1' } })
  t.equal(r.headers['x-dualtrack-backend'], 'new', 'the last good config routes')
  await r.body.dump()
  t.equal(g.proc.exitCode, null)
})

for (const signal of ['SIGSEGV', 'SIGABRT', 'SIGBUS', 'SIGFPE', 'SIGILL'] as const) {
  t.test(`${signal} is not trapped: the process dies of it, for its supervisor to restart`, async (t) => {
    const { g } = await gateway(t)
    const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>((resolve) => g.proc.once('exit', (code, sig) => resolve({ code, signal: sig })))
    g.proc.kill(signal)
    const e = await exited
    t.same(e, { code: null, signal }, `killed by ${signal}, not a graceful exit`)
  })
}
