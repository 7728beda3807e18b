// a segment config that cannot work is refused whole, naming the field and its line
import t from 'tap'
import { parseConfig } from '../../src/config/index.js'

const yaml = (when: string, extra = '        backend: new') => `backends: { legacy: { url: "http://127.0.0.1:1" }, new: { url: "http://127.0.0.1:2" } }
rollouts:
  checkout:
    percent: 5
    cohortKey: [header:x-user-id]
    attributes:
      email: [header:x-user-email]
      registeredAt: [jwt:reg_at]
    segments:
      - name: staff
        when:
          - ${when}
${extra}
`

const refused = (text: string): string => {
  try {
    parseConfig(text, 'gw.yaml', {})
  } catch (err) {
    t.equal((err as { code?: string }).code, 'DUALTRACK_ERR_CONFIG_INVALID')
    return (err as Error).message
  }
  throw new Error('accepted')
}

t.test('refusals name the field and line', async (t) => {
  t.match(refused(yaml('{ attribute: email, op: LIKE, value: x }')), /^gw\.yaml:12:\d+: rollouts\.checkout\.segments\[0\]\.when\[0\]\.op: must be one of IN, NOT_IN, .*IN_CIDR/m, 'unknown operator')
  t.match(refused(yaml('{ attribute: registeredAt, op: DATE_AFTER }')), /^gw\.yaml:12:13: rollouts\.checkout\.segments\[0\]\.when\[0\]\.value: is required for op DATE_AFTER\n {2}example: \{ attribute: registeredAt, op: DATE_AFTER, value: "2026-11-01T00:00:00Z" \}/m, 'missing value')
  t.match(refused(yaml('{ attribute: email, op: IN, value: a }')), /gw\.yaml:12:13: rollouts\.checkout\.segments\[0\]\.when\[0\]\.values: is required for op IN \(it takes a list, not value\)/, 'a list operator without values')
  t.match(refused(yaml('{ attribute: email, op: REGEX, value: "^(a+)+@x$" }')), /gw\.yaml:12:\d+: rollouts\.checkout\.segments\[0\]\.when\[0\]\.value: can backtrack catastrophically/, 'a backtracking REGEX')
  t.match(refused(yaml('{ attribute: email, op: REGEX, value: "([a-z]*)*" }')), /when\[0\]\.value: can backtrack catastrophically/)
  t.match(refused(yaml('{ attribute: email, op: REGEX, value: "(unclosed" }')), /when\[0\]\.value: is not a valid regular expression/)
  t.match(refused(yaml('{ attribute: tier, op: IN, values: [staff] }')), /gw\.yaml:12:\d+: rollouts\.checkout\.segments\[0\]\.when\[0\]\.attribute: no attribute named tier \(attributes: email, registeredAt\)/, 'an undeclared attribute')
  t.match(refused(yaml('{ attribute: registeredAt, op: DATE_BEFORE, value: "next week" }')), /when\[0\]\.value: "next week" is not an ISO 8601 date or epoch seconds/)
  t.match(refused(yaml('{ attribute: email, op: SEMVER_GT, value: 5 }')), /when\[0\]\.value: 5 is not a semantic version/)
  t.match(refused(yaml('{ attribute: email, op: NUM_GT, value: "lots" }')), /when\[0\]\.value: "lots" is not a number/)
  t.match(refused(yaml('{ attribute: email, op: IN_CIDR, values: [10.0.0.0/8, 10.0.0.0/33] }')), /gw\.yaml:12:\d+: rollouts\.checkout\.segments\[0\]\.when\[0\]\.values\[1\]: "10\.0\.0\.0\/33" is not an IP address or CIDR block/)
  t.match(refused(yaml('{ attribute: email, op: NUM_GT, value: 1, caseInsensitive: true }')), /when\[0\]\.caseInsensitive: applies to string operators only/)
  t.match(refused(yaml('{ attribute: email, op: IN, values: [a] }', '        backend: new\n        percent: 5')), /gw\.yaml:10:\d+: rollouts\.checkout\.segments\[0\]: needs exactly one of percent or backend/)
  t.match(refused(yaml('{ attribute: email, op: IN, values: [a] }', '')), /segments\[0\]: needs exactly one of percent or backend/)
  t.match(refused(yaml('{ attribute: email, op: IN, values: [a] }', '        percent: 5.555')), /segments\[0\]\.percent: must have at most two decimals/)
  t.match(refused(yaml('{ attribute: email, op: IN, values: [a], negate: true }')), /when\[0\]\.negate: unknown key/)
  t.match(refused(yaml('{ attribute: email, op: IN, values: [a] }', '        backend: new\n      - { name: staff, when: [{ attribute: email, op: IN, values: [b] }], percent: 1 }')), /gw\.yaml:14:\d+: rollouts\.checkout\.segments\[1\]\.name: staff is used by another segment/)
  t.match(refused(yaml('{ attribute: email, op: IN, values: [a] }').replace('[jwt:reg_at]', '[jwt:reg_at, peer-ip]')), /rollouts\.checkout\.attributes\.registeredAt\[1\]: must match pattern/)
})

t.test('a good segment config loads; numbers are allowed as values', async (t) => {
  const c = parseConfig(yaml('{ attribute: registeredAt, op: DATE_AFTER, value: 1793491200 }', '        percent: 10'), 'gw.yaml', {})
  t.same(c.rollouts.checkout?.segments, [{ name: 'staff', when: [{ attribute: 'registeredAt', op: 'DATE_AFTER', value: 1793491200, inverted: false, caseInsensitive: false }], percent: 10 }])
})
