// a Redis written by dualtrack 0.1 (state keys without a hash tag): the first gateway of this
// version copies the state, its version and the audit to the tagged keys once, and serves it
import t from 'tap'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { startRedis } from '../helpers/redis.js'
import { basicYaml, startGatewayFromYaml, tempDir } from '../helpers/gateway.js'
import { call, OPERATOR, TOKENS_YAML, VIEWER } from '../helpers/admin.js'
import { startBackend } from '../helpers/backend.js'

t.test('state under the old key names is moved to the hash-tagged ones', async (t) => {
  const redis = await startRedis(t)
  const legacy = await startBackend('legacy', t)
  const fresh = await startBackend('new', t)
  const prefix = `mig${process.pid}:`
  const state = (i: number) => `state: { store: redis, file: "${join(tempDir(), `c${i}.json`)}", redis: { url: "${redis.url}", prefix: "${prefix}" } }`
  const yaml = (i: number) => basicYaml(legacy.url, fresh.url, { top: TOKENS_YAML + state(i) })
  const c = new Redis(redis.url)
  t.teardown(() => c.disconnect())

  // a state made by a gateway, then laid out as 0.1 left it
  const first = await startGatewayFromYaml(yaml(0), t)
  t.equal((await call(first.adminUrl, 'PUT', '/admin/rollouts/checkout', OPERATOR, { percent: 37, reason: 'before the upgrade' })).status, 200)
  await first.app.close()
  const tag = `{${prefix.slice(0, -1)}}`
  for (const k of ['state', 'version', 'audit']) await c.rename(`${tag}:${k}`, `${prefix}${k}`)
  t.equal(await c.exists(`${tag}:state`), 0)
  const oldAudit = await c.lrange(`${prefix}audit`, 0, -1)
  t.ok(oldAudit.length >= 2)

  const g = await startGatewayFromYaml(yaml(1), t)
  const st = await call(g.adminUrl, 'GET', '/admin/state', VIEWER)
  t.match(st.body, { rollouts: { checkout: { percent: 37, source: 'admin', updatedBy: 'oncall' } } }, 'the 0.1 state is in force')
  t.equal(await c.exists(`${tag}:state`), 1, 'and now under the tagged key')
  t.equal(await c.get(`${tag}:version`), await c.get(`${prefix}version`))
  t.same(await c.lrange(`${tag}:audit`, 0, -1), oldAudit, 'the audit, newest first, as it was')
  t.equal(await c.exists(`${prefix}state`), 1, 'the old keys stay, for a rollback of the gateway itself')
  const audit = await call(g.adminUrl, 'GET', '/admin/audit?limit=10', VIEWER)
  t.match((audit.body.entries as { reason: string | null }[])[0], { reason: 'before the upgrade' })
  // a change now goes to the tagged keys only
  t.equal((await call(g.adminUrl, 'PUT', '/admin/rollouts/checkout', OPERATOR, { percent: 38 })).status, 200)
  t.match(JSON.parse(await c.get(`${tag}:state`) ?? '{}'), { rollouts: { checkout: { percent: 38 } } })
  t.match(JSON.parse(await c.get(`${prefix}state`) ?? '{}'), { rollouts: { checkout: { percent: 37 } } })
})
