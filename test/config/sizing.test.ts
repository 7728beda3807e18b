// the memory budget of README's Sizing section: each term from the config, so a bigger shadow cap,
// a second shadowed route or more connections show in the total
import t from 'tap'
import { parseConfig, memoryBudget, DEFAULT_SHADOW_MAX_IN_FLIGHT, DEFAULT_SHADOW_MAX_BODY_BYTES } from '../../src/config/index.js'

const config = (routes: string, backends = '') => parseConfig(`
backends: { legacy: { url: "http://127.0.0.1:1"${backends} }, new: { url: "http://127.0.0.1:2"${backends} } }
rollouts:
  checkout:
    percent: 5
    cohortKey: [header:x-user-id]
    affinity: { learn: [json:$.orderId], lookup: [form:out_trade_no], ttl: 30d }
routes:
${routes}
`, 'sizing.yaml')

t.test('the defaults: 64 copies of 3 bodies of 128 KiB per shadowed route', async (t) => {
  t.equal(DEFAULT_SHADOW_MAX_IN_FLIGHT, 64)
  t.equal(DEFAULT_SHADOW_MAX_BODY_BYTES, 131_072)
  const c = config(`  - { name: orders, match: { prefix: /api/orders }, rollout: checkout, shadow: { percent: 100 } }
  - { name: payments, match: { prefix: /api/payments }, rollout: checkout }`)
  t.same(memoryBudget(c, 128), {
    heap: 128 + 48,
    native: 64,
    shadow: 24,
    // 128 + 128 connections, each with a request body and an answer of at most 128 KiB
    exchanges: 64,
    total: 176 + 64 + 24 + 64
  })
})

t.test('every shadowed route adds its copies; without shadow the affinity body bounds an exchange', async (t) => {
  const two = config(`  - { name: orders, match: { prefix: /api/orders }, rollout: checkout, shadow: { maxInFlight: 10, maxBodyBytes: 1048576 } }
  - { name: payments, match: { prefix: /api/payments }, rollout: checkout, shadow: {} }`)
  t.equal(memoryBudget(two, 100).shadow, 10 * 3 * 1 + 24, '30 MiB for orders, 24 for payments')
  t.equal(memoryBudget(two, 100).exchanges, 256 * 2 * 1, 'the largest capture (1 MiB) on every connection')
  const none = config('  - { name: payments, match: { prefix: /api/payments }, rollout: checkout }', ', connections: 16')
  t.same(memoryBudget(none, 96), { heap: 144, native: 64, shadow: 0, exchanges: 32 * 2 * 64 / 1024, total: 144 + 64 + 4 })
})
