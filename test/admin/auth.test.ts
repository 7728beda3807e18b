// admin bearer tokens as a pure module: the principal each Authorization header gets, and the
// operator token made when none is configured
import t from 'tap'
import { createAuth } from '../../src/admin/auth.js'

const TOKENS = [
  { name: 'oncall', token: 'operator-token-0123456789', role: 'operator' as const },
  { name: 'grafana', token: 'viewer-token-0123456789abc', role: 'viewer' as const }
]

t.test('each header gets its principal, or none', async (t) => {
  const auth = createAuth(TOKENS)
  t.equal(auth.generated, undefined, 'tokens configured: none generated')
  const cases: [string | undefined, unknown][] = [
    ['Bearer operator-token-0123456789', { name: 'oncall', role: 'operator' }],
    ['bearer viewer-token-0123456789abc', { name: 'grafana', role: 'viewer' }],
    ['BEARER   viewer-token-0123456789abc  ', { name: 'grafana', role: 'viewer' }],
    ['Bearer operator-token-012345678', undefined],
    ['Bearer operator-token-0123456789x', undefined],
    ['Bearer ', undefined],
    ['Basic b25jYWxsOm9wZXJhdG9yLXRva2Vu', undefined],
    ['operator-token-0123456789', undefined],
    ['Bearer', undefined],
    ['', undefined],
    [undefined, undefined]
  ]
  t.same(cases.map(([h]) => auth.check(h)), cases.map(([, p]) => p))
})

t.test('a principal is a name and a role, nothing of the token', async (t) => {
  const p = createAuth(TOKENS).check('Bearer operator-token-0123456789')
  t.same(Object.keys(p ?? {}).sort(), ['name', 'role'])
  t.notMatch(JSON.stringify(p), 'operator-token')
})

t.test('no tokens configured: one random operator token, different per start', async (t) => {
  const a = createAuth([])
  const b = createAuth([])
  t.match(a.generated, /^[A-Za-z0-9_-]{32}$/, '24 random bytes, base64url')
  t.not(a.generated, b.generated)
  t.same(a.check(`Bearer ${a.generated}`), { name: 'generated-operator', role: 'operator' })
  t.equal(a.check(`Bearer ${b.generated}`), undefined, 'another start\'s token does not open this one')
})

t.test('two entries with the same token: the first listed wins', async (t) => {
  const auth = createAuth([{ name: 'first', token: 'same-token-0123456789', role: 'viewer' }, { name: 'second', token: 'same-token-0123456789', role: 'operator' }])
  t.same(auth.check('Bearer same-token-0123456789'), { name: 'first', role: 'viewer' })
})
