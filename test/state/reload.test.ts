import t, { type Test } from 'tap'
import { writeFileSync, renameSync, symlinkSync, mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'
import { request } from 'undici'
import { startBackend } from '../helpers/backend.js'
import { basicYaml, captureLogger, tempDir } from '../helpers/gateway.js'
import { call, OPERATOR, VIEWER, TOKENS_YAML } from '../helpers/admin.js'
import { loadConfigFile } from '../../src/config/index.js'
import { buildApp } from '../../src/app.js'
import { waitFor } from '../helpers/wait.js'

async function start (t: Test, yaml: (l: string, n: string) => string, file?: string) {
  const legacy = await startBackend('legacy', t)
  const fresh = await startBackend('new', t)
  const dir = tempDir()
  const cfgFile = file ?? join(dir, 'gateway.yaml')
  const write = (text: string) => writeFileSync(cfgFile, text)
  const text = (l: string, n: string) => yaml(l, n) + `\nstate: { store: file, file: "${join(dir, 'state.json')}" }\n`
  write(text(legacy.url, fresh.url))
  const { logs, logger } = captureLogger()
  const app = await buildApp(loadConfigFile(cfgFile, {}), { logger, watch: true, env: {} })
  await app.gateway.listen({ port: 0, host: '127.0.0.1' })
  await app.admin.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  return {
    app, logs, dir, cfgFile, write, yamlFor: () => text(legacy.url, fresh.url),
    url: `http://127.0.0.1:${(app.gateway.server.address() as AddressInfo).port}`,
    adminUrl: `http://127.0.0.1:${(app.admin.server.address() as AddressInfo).port}`
  }
}

/** wait for the condition; the time it took is informative only (a tap comment), never a threshold */
async function seen (t: Test, what: string, condition: () => boolean | Promise<boolean>): Promise<void> {
  const started = performance.now()
  await waitFor(condition, { what })
  t.pass(what)
  t.comment(`${what}: after ${(performance.now() - started).toFixed(0)} ms`)
}

const yaml = (l: string, n: string) => basicYaml(l, n, { top: TOKENS_YAML })
const percentOf = async (adminUrl: string) => ((await call(adminUrl, 'GET', '/admin/state', VIEWER)).body.rollouts as Record<string, { percent: number }>).checkout?.percent

t.test('a valid edit applies; bad files are refused and the old config serves on', async (t) => {
  const g = await start(t, yaml)
  t.equal(await percentOf(g.adminUrl), 50)
  g.write(g.yamlFor().replace('percent: 50', 'percent: 20'))
  await seen(t, 'an in-place write is applied', async () => (await percentOf(g.adminUrl)) === 20)
  t.equal(g.app.dataPlane.router.rollouts.get('checkout')?.threshold, 2000)

  const bad = [
    [g.yamlFor().replace('percent: 50', 'percent: [20'), 'YAML syntax error'],
    [g.yamlFor().replace('percent: 50', 'percent: 20\n    colour: blue'), 'rollouts.checkout.colour: unknown key'],
    [g.yamlFor().replace('percent: 50', 'percent: 150'), 'rollouts.checkout.percent: must be <= 100']
  ] as const
  for (const [text, message] of bad) {
    const logsBefore = g.logs.length
    g.write(text)
    // a watcher may also see the truncated file of an in-place write: wait for this refusal itself
    const refusal = () => g.logs.slice(logsBefore).find((l) => l.msg === 'config refused: the last good config stays' && String(l.error).includes(message))
    await seen(t, `refused: ${message}`, () => refusal() !== undefined)
    t.match(refusal()?.error, message)
    t.equal(await percentOf(g.adminUrl), 20, 'the last good config stays')
    const r = await request(g.url + '/api/orders', { headers: { 'x-user-id': 'qa-user-1' } })
    await r.body.dump()
    t.equal(r.statusCode, 200, 'and serves on')
    const reload = await call(g.adminUrl, 'POST', '/admin/reload', OPERATOR, {})
    t.equal(reload.status, 400)
    t.match(reload.body, { error: 'DUALTRACK_ERR_BAD_REQUEST', field: 'config', message })
  }
  // an atomic swap: write a new file and rename it over the old one
  const tmp = g.cfgFile + '.new'
  writeFileSync(tmp, g.yamlFor().replace('percent: 50', 'percent: 30'))
  renameSync(tmp, g.cfgFile)
  await seen(t, 'a rename over the file is seen', async () => (await percentOf(g.adminUrl)) === 30)
  const audit = (await call(g.adminUrl, 'GET', '/admin/audit?limit=1', VIEWER)).body.entries as { actor: string, source: string, before: unknown, after: unknown }[]
  t.match(audit[0], { actor: 'yaml', source: 'yaml', action: 'set-percent', before: 20, after: 30 })
})

t.test('a Kubernetes ConfigMap symlink swap is seen', async (t) => {
  // the layout a ConfigMap volume has: gateway.yaml -> ..data/gateway.yaml, ..data -> ..2026_v1
  const dir = tempDir('dualtrack-cm-')
  mkdirSync(join(dir, '..v1'))
  symlinkSync('..v1', join(dir, '..data'))
  symlinkSync('..data/gateway.yaml', join(dir, 'gateway.yaml'))
  const legacy = await startBackend('legacy', t)
  const fresh = await startBackend('new', t)
  const text = (p: number) => yaml(legacy.url, fresh.url).replace('percent: 50', `percent: ${p}`) + `\nstate: { store: file, file: "${join(dir, 'state.json')}" }\n`
  writeFileSync(join(dir, '..v1', 'gateway.yaml'), text(50))
  const { logger } = captureLogger()
  const app = await buildApp(loadConfigFile(join(dir, 'gateway.yaml'), {}), { logger, watch: true, env: {} })
  t.teardown(() => app.close())
  mkdirSync(join(dir, '..v2'))
  writeFileSync(join(dir, '..v2', 'gateway.yaml'), text(40))
  symlinkSync('..v2', join(dir, '..data_tmp'))
  renameSync(join(dir, '..data_tmp'), join(dir, '..data'))
  await seen(t, 'the swapped file is applied', () => app.dataPlane.router.rollouts.get('checkout')?.threshold === 4000)
})

t.test('an admin change survives a restart, and an unrelated YAML edit keeps it', async (t) => {
  const g = await start(t, yaml)
  t.equal((await call(g.adminUrl, 'PUT', '/admin/rollouts/checkout', OPERATOR, { percent: 12 })).status, 200)
  await g.app.close()
  // restart on the same files
  const { logger } = captureLogger()
  const again = await buildApp(loadConfigFile(g.cfgFile, {}), { logger, env: {} })
  t.teardown(() => again.close())
  t.equal(again.state.doc.rollouts.checkout?.percent, 12, 'a restart does not undo an admin change')
  t.equal(again.dataPlane.router.rollouts.get('checkout')?.threshold, 1200)
  // an unrelated YAML edit (a region) keeps the admin percent
  g.write(g.yamlFor().replace('zhejiang: 0', 'zhejiang: 5'))
  t.same(await again.reload(), { ok: true })
  t.equal(again.state.doc.rollouts.checkout?.percent, 12)
  t.same(again.state.doc.rollouts.checkout?.regions, { guangdong: 100, zhejiang: 5 })
  // editing the YAML's percent is the most recent change: it wins
  g.write(g.yamlFor().replace('zhejiang: 0', 'zhejiang: 5').replace('percent: 50', 'percent: 25'))
  await again.reload()
  t.equal(again.state.doc.rollouts.checkout?.percent, 25)
  await again.close()
  // a YAML field edited while the gateway was down counts as changed at start
  g.write(g.yamlFor().replace('zhejiang: 0', 'zhejiang: 5').replace('percent: 50', 'percent: 35'))
  const third = await buildApp(loadConfigFile(g.cfgFile, {}), { logger, env: {} })
  t.teardown(() => third.close())
  t.equal(third.state.doc.rollouts.checkout?.percent, 35)
  const state = JSON.parse(readFileSync(join(g.dir, 'state.json'), 'utf8')) as { audit: { actor: string, action: string }[] }
  t.match(state.audit.slice(0, 3), [{ actor: 'yaml', action: 'set-percent' }, { actor: 'yaml', action: 'set-percent' }, { actor: 'yaml', action: 'set-regions' }])
})
