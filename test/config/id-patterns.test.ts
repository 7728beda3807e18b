// affinity.idPatterns (issue 10): the owner from the id's form; checked at load
import t from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { checkIdPatterns, compileIdPatterns, parseConfig } from '../../src/config/index.js'
import { DEFAULT_PEER_TIMEOUT_MS } from '../../src/state/peers.js'
import { tempDir } from '../helpers/gateway.js'

t.test('regexes and prefixes name the owner; neither or both names none', async (t) => {
  const regex = compileIdPatterns({ new: '^NW-[0-9]+$', legacy: '^LG-' })
  t.same(['NW-12', 'NW-x', 'LG-7', 'xNW-1', ''].map((id) => regex?.(id)), ['new', undefined, 'legacy', undefined, undefined])
  const prefix = compileIdPatterns({ new: 'NW-', legacy: 'LG-' })
  t.same(['NW-1', 'LG-1', 'nw-1'].map((id) => prefix?.(id)), ['new', 'legacy', undefined], 'a prefix is text, case and all')
  // a prefix is never read as a regex
  t.equal(compileIdPatterns({ new: 'N.W' })?.('NxW'), undefined)
  t.equal(compileIdPatterns({ new: 'N.W' })?.('N.W-1'), 'new')
  // one side only: the other is whatever the store says
  t.same(['NW-1', 'LG-1'].map((id) => compileIdPatterns({ new: '^NW-' })?.(id)), ['new', undefined])
  t.equal(compileIdPatterns(undefined), undefined, 'no patterns: no function, nothing on the request path')
  // overlap that could not be ruled out at load: the store decides
  t.equal(compileIdPatterns({ new: '^[A-Z]{2}-1', legacy: '^[A-Z]{2}-' })?.('NW-1'), undefined)
})

t.test('load-time checks: backtracking, bad regexes, overlap', async (t) => {
  t.same(checkIdPatterns({ new: '^NW-', legacy: '^LG-' }), [])
  t.same(checkIdPatterns({ new: 'NW-', legacy: 'LG-' }), [])
  t.match(checkIdPatterns({ new: '^(a+)+$' }), [{ field: 'new', message: /backtrack catastrophically/ }])
  t.match(checkIdPatterns({ legacy: '^(' }), [{ field: 'legacy', message: /not a valid regular expression/ }])
  t.match(checkIdPatterns({ new: 'NW', legacy: 'NW-' }), [{ field: '', message: /can match both patterns \(e\.g\. "NW-"\)/ }])
  t.match(checkIdPatterns({ new: '^NW-\\d+$', legacy: '^NW-' }), [{ field: '', message: /can match both/ }])
  t.same(checkIdPatterns({ new: '^N?W-', legacy: '^LG-' }), [], 'an optional first letter leaves no literal: not decidable here, accepted')
  t.same(checkIdPatterns({ new: '^NW-\\d+$', legacy: '^LG-\\d+$' }), [], 'different literal beginnings never overlap')
})

t.test('a config with bad idPatterns is refused naming the field and line', async (t) => {
  const yaml = (ids: string) => `
backends: { legacy: { url: "http://127.0.0.1:1" }, new: { url: "http://127.0.0.1:2" } }
rollouts:
  checkout:
    percent: 5
    cohortKey: [header:x-user-id]
    affinity:
      ttl: 1d
      idPatterns: ${ids}
`
  t.throws(() => parseConfig(yaml('{ new: "^(a*)*$" }'), 'g.yaml'), { code: 'DUALTRACK_ERR_CONFIG_INVALID', message: /^g\.yaml:9:\d+: rollouts\.checkout\.affinity\.idPatterns\.new: may backtrack catastrophically/ })
  t.throws(() => parseConfig(yaml('{ new: "NW", legacy: "NW-9" }'), 'g.yaml'), { message: /^g\.yaml:9:\d+: rollouts\.checkout\.affinity\.idPatterns: an id can match both patterns/ })
  t.throws(() => parseConfig(yaml('{}'), 'g.yaml'), { message: /idPatterns/ })
  const ok = parseConfig(yaml('{ new: "^NW-", legacy: "^LG-" }'), 'g.yaml')
  t.same(ok.rollouts.checkout?.affinity?.idPatterns, { new: '^NW-', legacy: '^LG-' })
})

t.test('state.peers: urls or dns, one of them; timeoutMs 500 by default; guard.rollbackMode drain by default', async (t) => {
  const yaml = (peers: string) => `
backends: { legacy: { url: "http://127.0.0.1:1" }, new: { url: "http://127.0.0.1:2" } }
state: { store: redis, peers: ${peers} }
rollouts:
  checkout: { percent: 5, cohortKey: [header:x-user-id], guard: { window: 10s } }
`
  const c = parseConfig(yaml('{ dns: "peers.ns.svc.cluster.local:9090" }'), 'p.yaml')
  t.same(c.state.peers, { dns: 'peers.ns.svc.cluster.local:9090', timeoutMs: DEFAULT_PEER_TIMEOUT_MS })
  t.equal(DEFAULT_PEER_TIMEOUT_MS, 500, 'the schema\'s default is the client\'s')
  t.equal(c.rollouts.checkout?.guard?.rollbackMode, 'drain')
  t.throws(() => parseConfig(yaml('{ timeoutMs: 50 }'), 'p.yaml'), { message: /^p\.yaml:3:\d+: state\.peers: give either urls or dns/ })
  t.throws(() => parseConfig(yaml('{ urls: ["http://a:1"], dns: "b:2" }'), 'p.yaml'), { message: /state\.peers: give either urls or dns/ })
  t.throws(() => parseConfig(yaml('{ dns: "no-port" }'), 'p.yaml'), { message: /state\.peers\.dns/ })

  // tokenFile: a mounted Secret's file, relative to the config file, read at load
  const dir = tempDir('dualtrack-peers-')
  const token = randomBytes(32).toString('hex')
  writeFileSync(join(dir, 'viewer'), token + '\n')
  writeFileSync(join(dir, 'weak'), 'abc\n')
  const f = parseConfig(yaml('{ dns: "dualtrack-peers:9090", tokenFile: viewer }'), join(dir, 'p.yaml'))
  t.same(f.state.peers, { dns: 'dualtrack-peers:9090', tokenFile: join(dir, 'viewer'), token, timeoutMs: DEFAULT_PEER_TIMEOUT_MS }, 'read, without its newline; the path made absolute')
  t.throws(() => parseConfig(yaml('{ dns: "d:9090", tokenFile: missing }'), join(dir, 'p.yaml')),
    { message: new RegExp(`p\\.yaml:3:\\d+: state\\.peers\\.tokenFile: cannot read ${join(dir, 'missing').replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} \\(ENOENT\\)`) })
  t.throws(() => parseConfig(yaml('{ dns: "d:9090", tokenFile: weak }'), join(dir, 'p.yaml')), { message: /state\.peers\.tokenFile: the peer token is 3 characters/ })
  t.throws(() => parseConfig(yaml(`{ dns: "d:9090", tokenFile: viewer, token: "${token}" }`), join(dir, 'p.yaml')), { message: /state\.peers\.tokenFile: give token or tokenFile, not both/ })
})
