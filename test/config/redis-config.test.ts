// state.redis (DESIGN.md §11): exactly one of url, sentinels, cluster, refused with the field and
// line at fault; the password from the environment; TLS passing through to ioredis
import t from 'tap'
import { parseConfig } from '../../src/config/index.js'
import { redisConnectionOf, redisKeys } from '../../src/state/redis-client.js'

const base = `backends:
  legacy: { url: "http://127.0.0.1:4001" }
  new: { url: "http://127.0.0.1:4002" }
`
const parse = (state: string, env: NodeJS.ProcessEnv = {}) => parseConfig(base + state, 'gw.yaml', env)
const refused = (state: string, env: NodeJS.ProcessEnv = {}): { code?: string, message: string } => {
  try {
    parse(state, env)
  } catch (err) {
    return err as { code?: string, message: string }
  }
  throw new Error('accepted')
}

t.test('exactly one of url, sentinels, cluster', async (t) => {
  const both = refused('state:\n  store: redis\n  redis:\n    url: "redis://r:6379"\n    sentinels: ["s:26379"]\n    sentinelName: dualtrack\n')
  t.equal(both.code, 'DUALTRACK_ERR_CONFIG_INVALID')
  t.match(both.message, /^gw\.yaml:7:5: state\.redis: give exactly one of url, sentinels, cluster \(found url and sentinels\)\n {2}example: /)
  const three = refused('state: { store: redis, redis: { url: "redis://r", sentinels: ["s:1"], sentinelName: x, cluster: ["c:1"] } }\n')
  t.match(three.message, /found url and sentinels and cluster/)
  t.match(refused('state: { store: redis, redis: { sentinels: ["s:26379"] } }\n').message, /state\.redis\.sentinels: needs sentinelName/)
  t.match(refused('state: { store: redis, redis: { url: "redis://r", sentinelName: dualtrack } }\n').message, /state\.redis\.sentinelName: only with sentinels/)
  t.match(refused('state: { store: redis, redis: { cluster: ["c:7000"], replicaWaitMs: 100 } }\n').message, /state\.redis\.replicaWaitMs: only with sentinels/)
  t.match(refused('state: { store: redis, redis: { sentinels: ["nohostport"], sentinelName: x } }\n').message, /state\.redis\.sentinels\/0|state\.redis\.sentinels\.0|state\.redis\.sentinels\[0\]/)
  t.match(refused('state: { store: redis, redis: { cluster: [] } }\n').message, /state\.redis\.cluster/)
  t.match(refused('state: { store: redis, redis: { prefix: "{x}" } }\n').message, /state\.redis\.prefix/)
})

t.test('none given: one server on the default port', async (t) => {
  const c = parse('state: { store: redis }\n')
  t.equal(c.state.redis.url, 'redis://127.0.0.1:6379')
  t.same(redisConnectionOf(c.state.redis).target, { kind: 'server', url: 'redis://127.0.0.1:6379' })
})

t.test('Sentinel and Cluster, with the password from the environment and TLS', async (t) => {
  const s = parse('state:\n  store: redis\n  redis:\n    sentinels: ["10.0.0.1:26379", "sentinel-b:26380"]\n    sentinelName: dualtrack\n    password: "${REDIS_PASSWORD}"\n    username: gw\n    tls: {}\n', { REDIS_PASSWORD: 's3cret' })
  t.same(redisConnectionOf(s.state.redis), {
    target: { kind: 'sentinel', sentinels: [{ host: '10.0.0.1', port: 26379 }, { host: 'sentinel-b', port: 26380 }], name: 'dualtrack' },
    username: 'gw', password: 's3cret', sentinelPassword: undefined, tls: {}
  })
  t.match(refused('state: { store: redis, redis: { url: "redis://r", password: "${REDIS_PASSWORD}" } }\n'), { code: 'DUALTRACK_ERR_CONFIG_ENV', message: /REDIS_PASSWORD/ })
  const c = parse('state: { store: redis, redis: { cluster: ["10.0.0.1:7000", "10.0.0.2:7000"], tls: { servername: redis.example } } }\n')
  t.same(redisConnectionOf(c.state.redis).target, { kind: 'cluster', nodes: [{ host: '10.0.0.1', port: 7000 }, { host: '10.0.0.2', port: 7000 }] })
  t.same(redisConnectionOf(c.state.redis).tls, { servername: 'redis.example' })
  t.same(redisConnectionOf(parse('state: { store: redis, redis: { url: "rediss://:pw@r:6380" } }\n').state.redis).target, { kind: 'server', url: 'rediss://:pw@r:6380' })
})

t.test('the key layout: state keys share one hash tag, affinity keys none', async (t) => {
  const k = redisKeys('dualtrack:')
  t.same([k.state, k.version, k.audit, k.channel, k.lease], ['{dualtrack}:state', '{dualtrack}:version', '{dualtrack}:audit', '{dualtrack}:changes', '{dualtrack}:lease:'])
  t.equal(k.aff, 'dualtrack:aff:')
  t.same(k.old, { state: 'dualtrack:state', version: 'dualtrack:version', audit: 'dualtrack:audit' })
  t.equal(redisKeys('').state, '{dualtrack}:state', 'an empty prefix still has a tag')
})
