import t, { type Test } from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { request } from 'undici'
import { startBackend } from '../helpers/backend.js'
import { basicYaml, tempDir } from '../helpers/gateway.js'
import { spawnGateway } from '../helpers/process.js'

/** a gateway process in front of two test backends, with this drain delay */
async function gatewayWithDrain (t: Test, drainDelayMs: number) {
  const legacy = await startBackend('legacy', t)
  const fresh = await startBackend('new', t)
  const dir = tempDir()
  const file = join(dir, 'gateway.yaml')
  writeFileSync(file, basicYaml(legacy.url, fresh.url) + `
server: { host: 127.0.0.1, port: 0, drainDelayMs: ${drainDelayMs} }
admin: { host: 127.0.0.1, port: 0 }
state: { store: file, file: "${join(dir, 'state.json')}" }
`)
  return { legacy, g: await spawnGateway(file, t) }
}

t.test('SIGTERM: not ready at once, in-flight requests finish, then the process exits', async (t) => {
  const { legacy, g } = await gatewayWithDrain(t, 400)
  legacy.handler = (_req, res) => { setTimeout(() => { res.writeHead(200, { 'content-type': 'text/plain' }); res.end('slow but done') }, 1200) }
  const inflight = request(g.url + '/api/orders', { headers: { 'x-user-id': 'vip-42' } })
  await new Promise((resolve) => setTimeout(resolve, 200))
  const started = Date.now()
  g.proc.kill('SIGTERM')
  await new Promise((resolve) => setTimeout(resolve, 100))
  const ready = await request(g.adminUrl + '/readyz')
  t.equal(ready.statusCode, 503, 'not ready while draining')
  t.same(await ready.body.json(), { status: 'draining', store: 'file', storeUp: true, version: 1 })
  const during = await request(g.url + '/api/orders', { headers: { 'x-user-id': 'vip-42' } }).catch((err: Error) => err)
  t.ok(!(during instanceof Error), 'still serving during the drain delay')
  const res = await inflight
  t.equal(res.statusCode, 200)
  t.equal(await res.body.text(), 'slow but done', 'the in-flight request completed')
  const code = await new Promise<number | null>((resolve) => g.proc.exitCode !== null ? resolve(g.proc.exitCode) : g.proc.once('exit', resolve))
  t.equal(code, 0)
  const took = Date.now() - started
  t.ok(took < 400 + 10_000, `exited ${took} ms after SIGTERM`)
  t.match(g.output(), /"signal":"SIGTERM".*"msg":"shutting down"/)
})

t.test('a second signal exits at once', async (t) => {
  const { g } = await gatewayWithDrain(t, 5000)
  const started = Date.now()
  g.proc.kill('SIGTERM')
  await new Promise((resolve) => setTimeout(resolve, 200))
  g.proc.kill('SIGTERM')
  const code = await new Promise<number | null>((resolve) => g.proc.exitCode !== null ? resolve(g.proc.exitCode) : g.proc.once('exit', resolve))
  t.ok(Date.now() - started < 3000, 'did not wait for the 5 s drain delay')
  t.not(code, null)
})
