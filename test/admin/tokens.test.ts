// admin tokens: placeholders and weak tokens refused at load naming the field; tokens from files
// re-read when the file changes (a Secret rotation needs no restart), a weak new one refused
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { writeFileSync, renameSync, mkdirSync, symlinkSync } from 'node:fs'
import { join } from 'node:path'
import { parseConfig, tokenWeakness } from '../../src/config/index.js'
import { startGatewayFromYaml, tempDir } from '../helpers/gateway.js'
import { startBackend } from '../helpers/backend.js'
import { call } from '../helpers/admin.js'
import { waitFor } from '../helpers/wait.js'

const good = () => randomBytes(32).toString('hex')
const BACKENDS = 'backends: { legacy: { url: "http://127.0.0.1:1" }, new: { url: "http://127.0.0.1:2" } }\n'

t.test('tokenWeakness: real tokens pass, placeholders and predictable ones do not', async (t) => {
  t.equal(tokenWeakness(good()), undefined, 'openssl rand -hex 32')
  t.equal(tokenWeakness(randomBytes(18).toString('base64url')), undefined, '24 random base64url characters')
  t.match(tokenWeakness('REPLACE-ME-operator-token-0000000000000000'), /placeholder/)
  t.match(tokenWeakness('changeme-changeme-changeme-1234'), /placeholder/)
  t.match(tokenWeakness('a1b2c3d4e5f6'), /is 12 characters; use at least 24/)
  t.match(tokenWeakness('0'.repeat(40)), /too predictable \(about 0 bits/)
  t.match(tokenWeakness('abababababababababababababab'), /too predictable/)
})

t.test('a weak or placeholder token is refused at load with its field and line', async (t) => {
  const yaml = (tokens: string) => `${BACKENDS}admin:\n  tokens:\n${tokens}`
  t.throws(() => parseConfig(yaml('    - { name: oncall, token: "REPLACE-ME-operator-token-0000000000000000", role: operator }\n'), 'g.yaml'),
    { message: /^g\.yaml:4:7: admin\.tokens\[0\]\.token: the token of oncall looks like a placeholder/ })
  t.throws(() => parseConfig(yaml(`    - { name: a, token: "${good()}", role: operator }\n    - { name: b, token: "short-token", role: viewer }\n`), 'g.yaml'),
    { message: /^g\.yaml:5:7: admin\.tokens\[1\]\.token: the token of b is 11 characters; use at least 24/ })
  t.throws(() => parseConfig(yaml(`    - { name: a, token: "${good()}", tokenFile: /x, role: operator }\n`), 'g.yaml'),
    { message: /admin\.tokens\[0\]: set exactly one of token and tokenFile/ })
  t.throws(() => parseConfig(yaml('    - { name: a, tokenFile: /nonexistent/dualtrack-token, role: operator }\n'), 'g.yaml'),
    { message: /admin\.tokens\[0\]\.tokenFile: cannot read \/nonexistent\/dualtrack-token \(ENOENT\)/ })
})

t.test('a token file is re-read when it changes: the new token works, the old one stops; a weak one is refused', async (t) => {
  const dir = tempDir()
  const file = join(dir, 'operator')
  const first = good()
  writeFileSync(file, first + '\n')
  const legacy = await startBackend('legacy', t)
  const fresh = await startBackend('new', t)
  const gw = await startGatewayFromYaml(`
backends: { legacy: { url: "${legacy.url}" }, new: { url: "${fresh.url}" } }
admin:
  tokens:
    - { name: oncall, tokenFile: "${file}", role: operator }
`, t)
  t.equal((await call(gw.adminUrl, 'GET', '/admin/state', first)).status, 200, 'the token read at start works')

  // the atomic swap a Secret volume does: write aside, rename over
  const second = good()
  writeFileSync(join(dir, 'operator.tmp'), second)
  renameSync(join(dir, 'operator.tmp'), file)
  await waitFor(async () => (await call(gw.adminUrl, 'GET', '/admin/state', second)).status === 200, { what: 'the rotated token to be accepted' })
  t.equal((await call(gw.adminUrl, 'GET', '/admin/state', first)).status, 401, 'the old token is refused after the rotation')

  writeFileSync(join(dir, 'operator.tmp'), 'REPLACE-ME-please-0000000000000000')
  renameSync(join(dir, 'operator.tmp'), file)
  await waitFor(() => gw.logs.some((l) => /new token refused/.test(String(l.msg))), { what: 'the placeholder to be refused in the log' })
  t.equal((await call(gw.adminUrl, 'GET', '/admin/state', second)).status, 200, 'the previous token stays')
  t.equal((await call(gw.adminUrl, 'GET', '/admin/state', 'REPLACE-ME-please-0000000000000000')).status, 401)
})

t.test('tokens from a Kubernetes Secret volume: one ..data swap rotates both, with no restart', async (t) => {
  // the layout deploy/k8s mounts at /etc/dualtrack/tokens: operator -> ..data/operator, ..data -> ..v1
  const dir = tempDir()
  const version = (name: string, operator: string, viewer: string) => {
    mkdirSync(join(dir, name))
    writeFileSync(join(dir, name, 'operator'), operator)
    writeFileSync(join(dir, name, 'viewer'), viewer)
  }
  const [op1, view1, op2, view2] = [good(), good(), good(), good()]
  version('..v1', op1, view1)
  symlinkSync('..v1', join(dir, '..data'))
  symlinkSync('..data/operator', join(dir, 'operator'))
  symlinkSync('..data/viewer', join(dir, 'viewer'))
  const legacy = await startBackend('legacy', t)
  const fresh = await startBackend('new', t)
  const gw = await startGatewayFromYaml(`
backends: { legacy: { url: "${legacy.url}" }, new: { url: "${fresh.url}" } }
admin:
  tokens:
    - { name: oncall, tokenFile: "${join(dir, 'operator')}", role: operator }
    - { name: grafana, tokenFile: "${join(dir, 'viewer')}", role: viewer }
`, t)
  t.equal((await call(gw.adminUrl, 'PUT', '/admin/rollouts/checkout', view1, { percent: 10 })).status, 403, 'the viewer token reads only')
  t.equal((await call(gw.adminUrl, 'GET', '/admin/state', op1)).status, 200)

  version('..v2', op2, view2)
  symlinkSync('..v2', join(dir, '..data_tmp'))
  renameSync(join(dir, '..data_tmp'), join(dir, '..data'))
  await waitFor(async () => (await call(gw.adminUrl, 'GET', '/admin/state', op2)).status === 200 &&
    (await call(gw.adminUrl, 'GET', '/admin/state', view2)).status === 200, { what: 'both rotated tokens to be accepted' })
  t.equal((await call(gw.adminUrl, 'GET', '/admin/state', op1)).status, 401, 'the old operator token is refused')
  t.equal((await call(gw.adminUrl, 'GET', '/admin/state', view1)).status, 401, 'the old viewer token is refused')
})
