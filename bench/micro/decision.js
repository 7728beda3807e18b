// micro: the routing decision per request (key extraction + murmur3 + decision), on the built gateway
//   node bench/micro/decision.js
// over a pool of 10k random user ids, so no branch predictor or inline cache sees one key only
import { bench, group, run, summary, do_not_optimize } from 'mitata'
import { importDist } from './dist.js'

const routing = await importDist('routing/index.js', ['compileRollout', 'decideInto', 'bucketOf', 'encodeSalt'])
const config = await importDist('config/index.js', ['parseConfig'])
const { compileRollout, decideInto, bucketOf, encodeSalt } = routing

const POOL = 10_000
const YAML = `
backends:
  legacy: { url: "http://127.0.0.1:4001" }
  new: { url: "http://127.0.0.1:4002" }
rollouts:
  header:   { percent: 50, salt: bench, cohortKey: [header:x-user-id] }
  chain:    { percent: 50, salt: bench, cohortKey: [cookie:uid, jwt:sub, header:x-user-id] }
  jwt:      { percent: 50, salt: bench, cohortKey: [jwt:sub] }
  regional: { percent: 50, salt: bench, cohortKey: [header:x-user-id], regions: { key: header:x-region, percent: { guangdong: 100, zhejiang: 20 } },
              force: { new: [qa-user-1, qa-user-2], legacy: [vip-42] } }
routes:
  - { name: api, match: { prefix: / }, rollout: header }
`
const cfg = config.parseConfig(YAML, 'bench/micro/decision.yaml', {})
const rollouts = Object.fromEntries(Object.entries(cfg.rollouts).map(([name, r]) => [name, compileRollout(name, r)]))

const REGIONS = ['guangdong', 'zhejiang', 'beijing', 'shanghai']
const b64url = (o) => Buffer.from(JSON.stringify(o)).toString('base64url')
const users = Array.from({ length: POOL }, () => `u-${Math.floor(Math.random() * 1e9).toString(36)}`)
const plain = users.map((u) => ({ method: 'GET', url: '/api/orders/o-1', headers: { 'x-user-id': u, host: 'shop.example' } }))
const regional = users.map((u, i) => ({ method: 'GET', url: '/api/orders/o-1', headers: { 'x-user-id': u, 'x-region': REGIONS[i % 4] } }))
// the chain finds no cookie, then the JWT claim: the costliest usual case
const jwts = users.map((u) => ({ method: 'GET', url: '/api/orders/o-1', headers: { cookie: 'theme=dark; lang=zh', authorization: `Bearer ${b64url({ alg: 'none' })}.${b64url({ sub: u, iat: 1_764_000_000 })}.sig` } }))
const salt = encodeSalt('bench')

const out = { backend: 'legacy', reason: 'default', bucket: -1 }
let i = 0
const next = () => { i = (i + 1) % POOL; return i }

// sanity before timing: about half of the pool on new
let onNew = 0
for (const req of plain) if (decideInto(out, rollouts.header, req, undefined).backend === 'new') onNew++
console.log(`pool of ${POOL} ids at 50%: ${(onNew / POOL * 100).toFixed(1)}% on new`)

summary(() => {
  group('per request', () => {
    bench('bucketOf(salt, key) only: murmur3 + mod', () => do_not_optimize(bucketOf(salt, users[next()])))
    bench('decideInto: header key', () => do_not_optimize(decideInto(out, rollouts.header, plain[next()], undefined)))
    bench('decideInto: header key + force sets + region', () => do_not_optimize(decideInto(out, rollouts.regional, regional[next()], undefined)))
    bench('decideInto: jwt:sub', () => do_not_optimize(decideInto(out, rollouts.jwt, jwts[next()], undefined)))
    bench('decideInto: cookie → jwt chain', () => do_not_optimize(decideInto(out, rollouts.chain, jwts[next()], undefined)))
  })
})
group('short cut', () => {
  bench('decideInto: affinity owner known (no key read, no hash)', () => do_not_optimize(decideInto(out, rollouts.header, plain[next()], 'new')))
})

// colors only on a terminal: the output is pasted into issues and results
await run({ colors: process.stdout.isTTY === true })
