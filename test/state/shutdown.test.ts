import t, { type Test } from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import net from 'node:net'
import type { ChildProcess } from 'node:child_process'
import { request } from 'undici'
import { startBackend } from '../helpers/backend.js'
import { basicYaml, tempDir } from '../helpers/gateway.js'
import { spawnGateway } from '../helpers/process.js'
import { waitFor } from '../helpers/wait.js'

/** a gateway process in front of two test backends, with this drain delay */
async function gatewayWithDrain (t: Test, drainDelayMs: number) {
  const legacy = await startBackend('legacy', t)
  const fresh = await startBackend('new', t)
  const dir = tempDir()
  const file = join(dir, 'gateway.yaml')
  // a backend timeout longer than any wait here: the held request must not time out
  writeFileSync(file, basicYaml(legacy.url, fresh.url, { timeoutMs: 60_000 }) + `
server: { host: 127.0.0.1, port: 0, drainDelayMs: ${drainDelayMs} }
admin: { host: 127.0.0.1, port: 0 }
state: { store: file, file: "${join(dir, 'state.json')}" }
`)
  return { legacy, g: await spawnGateway(file, t) }
}

/** resolves with the exit code once the process has exited */
function exitOf (proc: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => proc.exitCode !== null ? resolve(proc.exitCode) : proc.once('exit', resolve))
}

/** does the listener still accept a new connection? */
function accepts (url: string): Promise<boolean> {
  const { hostname, port } = new URL(url)
  return new Promise((resolve) => {
    const s = net.connect(Number(port), hostname)
    s.once('connect', () => { s.destroy(); resolve(true) })
    s.once('error', () => resolve(false))
  })
}

t.test('SIGTERM: not ready at once, still serving, in-flight requests finish, then the process exits', async (t) => {
  // the drain delay is the one clock here: it only has to outlast a readiness probe and one request
  const { legacy, g } = await gatewayWithDrain(t, 4000)
  // the backend holds the first request until the test lets go, so it is in flight for the whole drain
  let release: () => void = () => {}
  legacy.handler = (_req, res) => { release = () => { res.writeHead(200, { 'content-type': 'text/plain' }); res.end('slow but done') } }
  const events: string[] = []
  const inflight = request(g.url + '/api/orders', { headers: { 'x-user-id': 'vip-42' } })
  await waitFor(() => legacy.seen.length === 1, { what: 'the first request to reach the backend' })
  legacy.handler = undefined
  const exited = exitOf(g.proc).then((code) => { events.push('process exited'); return code })
  g.proc.kill('SIGTERM')
  const ready = await waitFor(async () => {
    const r = await request(g.adminUrl + '/readyz')
    const body = await r.body.json()
    return r.statusCode === 503 ? body : undefined
  }, { what: '/readyz to answer 503 after SIGTERM' })
  t.same(ready, { status: 'draining', store: 'file', storeUp: true, version: 1 }, 'not ready while draining')
  const during = await request(g.url + '/api/orders', { headers: { 'x-user-id': 'vip-42' } }).catch((err: Error) => err)
  t.ok(!(during instanceof Error), 'still serving during the drain delay')
  if (!(during instanceof Error)) {
    t.equal(during.statusCode, 200)
    await during.body.dump()
  }
  // after the drain delay the listener closes, but the process waits for the request in flight
  await waitFor(async () => !(await accepts(g.url)), { what: 'the gateway listener to close after the drain delay' })
  t.equal(g.proc.exitCode, null, 'still running while a request is in flight')
  release()
  const res = await inflight
  t.equal(res.statusCode, 200)
  t.equal(await res.body.text(), 'slow but done', 'the in-flight request completed')
  events.push('in-flight answered')
  t.equal(await exited, 0, 'exit code 0: closed on its own, not by the grace timer')
  t.same(events, ['in-flight answered', 'process exited'], 'the process exited after the in-flight answer')
  // the pipe may still hold the last lines when the exit is seen
  await waitFor(() => /"signal":"SIGTERM".*"msg":"shutting down"/.test(g.output()), { what: 'the shutdown line in the output' })
})

t.test('a second signal exits at once', async (t) => {
  // a drain delay far longer than the test's deadline: an exit at all means it did not wait for it
  const { g } = await gatewayWithDrain(t, 600_000)
  let exit: { code: number | null } | undefined
  void exitOf(g.proc).then((code) => { exit = { code } })
  g.proc.kill('SIGTERM')
  await waitFor(async () => (await request(g.adminUrl + '/readyz')).statusCode === 503, { what: 'the first SIGTERM to start the drain' })
  t.equal(exit, undefined, 'the first signal drains: still running')
  g.proc.kill('SIGTERM')
  const { code } = await waitFor(() => exit, { timeoutMs: 30_000, what: 'the process to exit on the second signal, long before the 10 min drain delay' })
  t.not(code, null)
})
