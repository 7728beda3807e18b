import t from 'tap'
import { readFileSync } from 'node:fs'
import { parse } from 'yaml'
import { randomBytes } from 'node:crypto'
import { parseConfig } from '../../src/config/index.js'
import { loadK8sConfig } from '../helpers/k8s-config.js'

// what `openssl rand -hex 32` makes, as the Secret's comment says
const env = { DUALTRACK_OPERATOR_TOKEN: randomBytes(32).toString('hex'), DUALTRACK_VIEWER_TOKEN: randomBytes(32).toString('hex'), REDIS_PASSWORD: 'p'.repeat(32) }

t.test('the Kubernetes ConfigMap holds a config the gateway accepts', async (t) => {
  const operator = randomBytes(32).toString('hex')
  const viewer = randomBytes(32).toString('hex')
  const c = loadK8sConfig({ operator, viewer }, { REDIS_PASSWORD: 'p'.repeat(32) })
  t.same(c.admin.tokens.map((x) => [x.name, x.role, x.token]), [['oncall', 'operator', operator], ['grafana', 'viewer', viewer]], 'the tokens are the files of the mounted Secret')
  t.ok(c.admin.tokens.every((x) => x.tokenFile !== undefined), 'read from files, so they are re-read when the Secret changes')
  t.equal(c.state.store, 'redis')
  t.equal(c.admin.host, '0.0.0.0')
  t.equal(c.server.port, 8080)
  t.equal(c.admin.port, 9090)
  t.ok(c.server.drainDelayMs > 0)
  t.same(c.state.redis.sentinels, ['dualtrack-redis-0.dualtrack-redis-headless:26379', 'dualtrack-redis-1.dualtrack-redis-headless:26379', 'dualtrack-redis-2.dualtrack-redis-headless:26379'])
  t.equal(c.state.redis.sentinelName, 'dualtrack')
  t.equal(c.state.redis.password, 'p'.repeat(32), 'the password from the environment')
  t.equal(c.state.redis.url, undefined)
})

t.test('the compose config is accepted too', async (t) => {
  const c = parseConfig(readFileSync('deploy/compose/gateway.yaml', 'utf8'), 'deploy/compose/gateway.yaml', env)
  t.equal(c.backends.legacy.url, 'http://legacy:4001')
  t.equal(c.backends.new.url, 'http://new:4002')
  t.same(c.state.redis.sentinels, ['sentinel-0:26379', 'sentinel-1:26379', 'sentinel-2:26379'])
  t.equal(c.state.redis.password, 'p'.repeat(32))
})

t.test('the Secret applied unedited is refused: its placeholders are not tokens', async (t) => {
  const secret = parse(readFileSync('deploy/k8s/secret.yaml', 'utf8')) as { stringData: Record<string, string> }
  t.throws(() => loadK8sConfig(secret.stringData),
    /admin\.tokens\[0\]\.tokenFile: the token of oncall looks like a placeholder/)
  // one key edited, the other forgotten: still refused, naming the forgotten one
  t.throws(() => loadK8sConfig({ ...secret.stringData, operator: randomBytes(32).toString('hex') }),
    /admin\.tokens\[1\]\.tokenFile: the token of grafana looks like a placeholder/)
})
