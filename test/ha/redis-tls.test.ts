// Redis over TLS with a password from the environment (state.redis: rediss://, tls.ca, password:
// ${VAR}): a real redis-server listening on TLS only, with a certificate made by openssl for this
// test. The state and the owner records go through it, and a gateway that does not trust the
// certificate never talks to it in the clear: it stays down and keeps serving
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { readFileSync } from 'node:fs'
import { Redis } from 'ioredis'
import { request } from 'undici'
import { startGatewayFromYaml, tempDir } from '../helpers/gateway.js'
import { call, OPERATOR, VIEWER } from '../helpers/admin.js'
import { startRedis } from '../helpers/redis.js'
import { startOrderSystem, orderYaml } from '../helpers/order-system.js'
import { waitFor } from '../helpers/wait.js'

const dir = tempDir()
const cert = join(dir, 'redis.crt')
const key = join(dir, 'redis.key')
// a self-signed certificate for 127.0.0.1: the gateway trusts it only when told to (tls.ca)
const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1',
  '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { encoding: 'utf8' })
if (made.error !== undefined || made.status !== 0) throw new Error(`openssl is required for this test (apt-get install openssl): ${made.error?.message ?? made.stderr}`)

const PASSWORD = `tls-test-${process.pid}-secret`
// the config reads the password from the environment, as a Secret would put it there
const env = { REDIS_PASSWORD: PASSWORD }
const PREFIX = `tls${process.pid}:`

t.test('the state and owner records go through a TLS Redis with a password', async (t) => {
  const redis = await startRedis(t, { tls: { cert, key }, password: PASSWORD })
  t.match(redis.url, /^rediss:\/\//)
  const legacy = await startOrderSystem('legacy', t)
  const fresh = await startOrderSystem('new', t)
  const state = (file: string, tls: string) => `state: { store: redis, file: "${join(dir, file)}", redis: { url: "${redis.url}", prefix: "${PREFIX}", password: "\${REDIS_PASSWORD}", tls: ${tls} } }`
  const g = await startGatewayFromYaml(orderYaml(legacy.url, fresh.url, state('a.json', `{ ca: "${cert}" }`), { operator: OPERATOR, viewer: VIEWER }), t, env)
  await waitFor(async () => (await call(g.adminUrl, 'GET', '/readyz')).body.storeUp === true, { what: 'the gateway connected to Redis over TLS' })

  const put = await call(g.adminUrl, 'PUT', '/admin/rollouts/checkout', OPERATOR, { percent: 30 })
  t.same([put.status, put.body.propagated], [200, true], 'a change is stored and published')

  const order = await request(g.url + '/api/orders', { method: 'POST', body: '{}', headers: { 'content-type': 'application/json', 'x-user-id': 'tls-buyer' } })
  const { orderId } = await order.body.json() as { orderId: string }
  const owner = order.headers['x-dualtrack-backend']

  // read back with a client of our own, over TLS with the same CA and password
  const direct = new Redis(redis.url, { tls: { ca: readFileSync(cert, 'utf8') }, password: PASSWORD, lazyConnect: true, maxRetriesPerRequest: 1 })
  t.teardown(() => direct.disconnect())
  await direct.connect()
  const doc = JSON.parse(await direct.get(`{${PREFIX.replace(/:$/, '')}}:state`) ?? '{}') as { rollouts?: { checkout?: { percent?: number } } }
  t.equal(doc.rollouts?.checkout?.percent, 30, 'the state document in Redis')
  t.equal((await direct.get(`${PREFIX}aff:checkout:${orderId}`))?.split(' ')[0], owner, 'the owner record in Redis')

  // nothing is sent in the clear: a plain connection to the TLS port gets no answer to PING
  const plain = new Redis(redis.url.replace('rediss:', 'redis:'), { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 5000, commandTimeout: 5000 })
  plain.on('error', () => {})
  t.teardown(() => plain.disconnect())
  await t.rejects(plain.connect().then(() => plain.ping()), 'the port speaks TLS only')

  await t.test('a gateway that does not trust the certificate stays off Redis and keeps serving', async (t) => {
    const h = await startGatewayFromYaml(orderYaml(legacy.url, fresh.url, state('b.json', '{}'), { operator: OPERATOR, viewer: VIEWER }), t, env)
    // it tried and was refused: the connect error is the certificate's, logged, and the store is down
    await waitFor(() => h.logs.some((l) => /self[- ]signed certificate/i.test(JSON.stringify(l))), { what: 'the certificate refused in the log' })
    const ready = await call(h.adminUrl, 'GET', '/readyz')
    t.equal(ready.body.storeUp, false, 'not connected')
    const r = await request(h.url + '/api/orders', { method: 'POST', body: '{}', headers: { 'content-type': 'application/json', 'x-user-id': 'tls-buyer-2' } })
    t.equal(r.statusCode, 201, 'the order still goes through')
    await r.body.dump()
  })

  await t.test('a wrong password is refused by Redis, named in the log', async (t) => {
    const wrong = `state: { store: redis, file: "${join(dir, 'c.json')}", redis: { url: "${redis.url}", prefix: "${PREFIX}", password: "\${REDIS_PASSWORD}", tls: { ca: "${cert}" } } }`
    const h = await startGatewayFromYaml(orderYaml(legacy.url, fresh.url, wrong, { operator: OPERATOR, viewer: VIEWER }), t, { REDIS_PASSWORD: 'not-the-password' })
    await waitFor(() => h.logs.some((l) => /WRONGPASS|invalid username-password/i.test(JSON.stringify(l))), { what: 'the refused password in the log' })
    t.equal((await call(h.adminUrl, 'GET', '/readyz')).body.storeUp, false)
    t.notOk(h.logs.some((l) => JSON.stringify(l).includes('not-the-password')), 'the password itself is never logged')
  })
})
