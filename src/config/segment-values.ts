// the values of segment conditions (DESIGN.md §8): one parser per kind, used both to check a
// config at load (a value that does not parse is refused, naming its line) and to read a
// request's attribute (an attribute that does not parse makes its condition false)
import { isIP } from 'node:net'
import semver from 'semver'
import safeRegex from 'safe-regex2'

export const OPERATORS = Object.freeze([
  'IN', 'NOT_IN', 'STR_CONTAINS', 'STR_STARTS_WITH', 'STR_ENDS_WITH',
  'NUM_EQ', 'NUM_GT', 'NUM_GTE', 'NUM_LT', 'NUM_LTE',
  'DATE_AFTER', 'DATE_BEFORE',
  'SEMVER_EQ', 'SEMVER_GT', 'SEMVER_LT',
  'REGEX', 'IN_CIDR'
] as const)
export type Operator = typeof OPERATORS[number]

/** operators that take `values` (a list); the others take one `value` */
export const LIST_OPERATORS: ReadonlySet<Operator> = new Set<Operator>(['IN', 'NOT_IN', 'STR_CONTAINS', 'STR_STARTS_WITH', 'STR_ENDS_WITH', 'IN_CIDR'])
/** operators `caseInsensitive` applies to */
export const STRING_OPERATORS: ReadonlySet<Operator> = new Set<Operator>(['IN', 'NOT_IN', 'STR_CONTAINS', 'STR_STARTS_WITH', 'STR_ENDS_WITH', 'REGEX'])

/** longest REGEX pattern accepted (the attribute itself is at most 512 characters) */
export const MAX_REGEX_LENGTH = 512

export interface ConditionSpec {
  readonly attribute: string
  readonly op: Operator
  readonly value?: string | number | undefined
  readonly values?: readonly (string | number)[] | undefined
  readonly inverted?: boolean | undefined
  readonly caseInsensitive?: boolean | undefined
}

const NUMBER = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?$/i
export function parseNumber (v: string | number): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) ? v : undefined
  const s = v.trim()
  if (!NUMBER.test(s)) return undefined
  const n = Number(s)
  return Number.isFinite(n) ? n : undefined
}

// ISO 8601 date or date-time; a time without an offset is UTC (a server's local zone must not
// decide who is a new sign-up). test() and Date.parse only: this runs per request, per condition
const ISO_DATE = /^\d{4}-\d{2}-\d{2}$/
const ISO_ZONED = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})$/i
const ISO_LOCAL = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?$/i
/** ms since the epoch from ISO 8601 or epoch seconds (a number or an all-digit string) */
export function parseDate (v: string | number): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) && v >= 0 ? v * 1000 : undefined
  const s = v.length > 0 && (v.charCodeAt(0) <= 32 || v.charCodeAt(v.length - 1) <= 32) ? v.trim() : v
  const fast = parseDateFast(s)
  if (fast !== undefined) return fast
  let t: number
  if (ISO_DATE.test(s) || ISO_ZONED.test(s)) t = Date.parse(s)
  else if (ISO_LOCAL.test(s)) t = Date.parse(s + 'Z')
  else return undefined
  return Number.isNaN(t) ? undefined : t
}

// the digits of s[i, i + n) as a number, or -1 when one is not a digit
function digits (s: string, i: number, n: number): number {
  let x = 0
  for (let k = i; k < i + n; k++) {
    const c = s.charCodeAt(k) - 48
    if (c < 0 || c > 9) return -1
    x = x * 10 + c
  }
  return x
}

/**
 * the usual shapes read without a regular expression, Date.parse or Date.UTC (a third of a
 * 3-segment decision went there): epoch seconds, YYYY-MM-DD, and YYYY-MM-DDTHH:MM:SS[.mmm] with Z or
 * ±HH:MM, fields in range. undefined for anything else, which the general path then judges, so
 * the answer is always the same as Date.parse's (test/config/segment-values.test.ts compares them)
 */
function parseDateFast (s: string): number | undefined {
  const n = s.length
  if (n >= 1 && n <= 12) {
    const e = digits(s, 0, n)
    if (e >= 0) return e * 1000
  }
  if (n !== 10 && n !== 20 && n !== 24 && n !== 25) return undefined
  if (s.charCodeAt(4) !== 45 /* - */ || s.charCodeAt(7) !== 45) return undefined
  const y = digits(s, 0, 4)
  const mo = digits(s, 5, 2)
  const d = digits(s, 8, 2)
  // years 0-99 take the general path (Date.parse's own reading of them)
  if (y < 100 || mo < 1 || mo > 12 || d < 1 || d > 31) return undefined
  if (n === 10) return daysFromCivil(y, mo, d) * DAY_MS
  if (s.charCodeAt(10) !== 84 /* T */ || s.charCodeAt(13) !== 58 /* : */ || s.charCodeAt(16) !== 58) return undefined
  const h = digits(s, 11, 2)
  const mi = digits(s, 14, 2)
  const sec = digits(s, 17, 2)
  if (h < 0 || h > 23 || mi < 0 || mi > 59 || sec < 0 || sec > 59) return undefined
  let ms = 0
  let offsetMin = 0
  if (n === 20) {
    if (s.charCodeAt(19) !== 90 /* Z */) return undefined
  } else if (n === 24) {
    if (s.charCodeAt(19) !== 46 /* . */ || s.charCodeAt(23) !== 90) return undefined
    ms = digits(s, 20, 3)
    if (ms < 0) return undefined
  } else {
    const sign = s.charCodeAt(19)
    if ((sign !== 43 /* + */ && sign !== 45) || s.charCodeAt(22) !== 58) return undefined
    const oh = digits(s, 20, 2)
    const om = digits(s, 23, 2)
    if (oh < 0 || oh > 23 || om < 0 || om > 59) return undefined
    offsetMin = (sign === 43 ? 1 : -1) * (oh * 60 + om)
  }
  return daysFromCivil(y, mo, d) * DAY_MS + ((h * 60 + mi - offsetMin) * 60 + sec) * 1000 + ms
}

const DAY_MS = 86_400_000

/**
 * days since 1970-01-01 of a proleptic Gregorian date, year >= 100 (Howard Hinnant's
 * days_from_civil): plain arithmetic where Date.UTC was most of a date's cost. A day past the
 * month's end rolls over into the next month, as Date.parse does (2026-02-30 is 2026-03-02)
 */
function daysFromCivil (y: number, m: number, d: number): number {
  const yy = m <= 2 ? y - 1 : y
  const era = Math.floor(yy / 400)
  const yoe = yy - era * 400
  const doy = Math.floor((153 * (m > 2 ? m - 3 : m + 9) + 2) / 5) + d - 1
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy
  return era * 146_097 + doe - 719_468
}

/** a semver (a leading v is allowed); pre-releases sort lower (5.0.0-beta.1 < 5.0.0) */
export function parseSemver (v: string | number): semver.SemVer | undefined {
  if (typeof v !== 'string') return undefined
  return semver.parse(v.trim()) ?? undefined
}

/**
 * compare a plain X.Y.Z (or vX.Y.Z) with a parsed semver without building a SemVer (the common
 * case, about a microsecond cheaper); undefined when `v` is not plain: then use semver itself
 */
export function comparePlainSemver (v: string, t: semver.SemVer): -1 | 0 | 1 | undefined {
  const n = v.length
  let i = n > 0 && v.charCodeAt(0) === 118 /* v */ ? 1 : 0
  let major = 0
  let minor = 0
  let patch = 0
  for (let part = 0; part < 3; part++) {
    const start = i
    let x = 0
    while (i < n) {
      const c = v.charCodeAt(i)
      if (c < 48 || c > 57) break
      x = x * 10 + (c - 48)
      i++
    }
    const len = i - start
    // no digits, a leading zero (semver refuses 01) or too long to be exact: let semver judge
    if (len === 0 || len > 15 || (len > 1 && v.charCodeAt(start) === 48)) return undefined
    if (part === 0) major = x
    else if (part === 1) minor = x
    else patch = x
    if (part < 2) {
      if (v.charCodeAt(i) !== 46 /* . */) return undefined
      i++
    }
  }
  if (i !== n) return undefined
  if (major !== t.major) return major > t.major ? 1 : -1
  if (minor !== t.minor) return minor > t.minor ? 1 : -1
  if (patch !== t.patch) return patch > t.patch ? 1 : -1
  // a release sorts above its own pre-releases
  return t.prerelease.length > 0 ? 1 : 0
}

export interface Cidr { readonly address: string, readonly prefix: number, readonly family: 'ipv4' | 'ipv6' }

/** an IP address without the IPv4-mapped prefix, or undefined */
export function parseIp (v: string | number): { address: string, family: 'ipv4' | 'ipv6' } | undefined {
  if (typeof v !== 'string') return undefined
  let s = v.trim()
  if (s.startsWith('::ffff:') && isIP(s.slice(7)) === 4) s = s.slice(7)
  const f = isIP(s)
  return f === 0 ? undefined : { address: s, family: f === 4 ? 'ipv4' : 'ipv6' }
}

/** 10.0.0.0/8, 2001:db8::/32, or one address */
export function parseCidr (v: string | number): Cidr | undefined {
  if (typeof v !== 'string') return undefined
  const [addr, bits, extra] = v.trim().split('/')
  if (extra !== undefined || addr === undefined) return undefined
  const ip = parseIp(addr)
  if (ip === undefined) return undefined
  const max = ip.family === 'ipv4' ? 32 : 128
  if (bits === undefined) return { ...ip, prefix: max }
  if (!/^\d{1,3}$/.test(bits) || Number(bits) > max) return undefined
  return { ...ip, prefix: Number(bits) }
}

/** why a REGEX pattern is refused, or undefined when it is fine */
export function regexProblem (pattern: string): string | undefined {
  if (pattern.length > MAX_REGEX_LENGTH) return `is longer than ${MAX_REGEX_LENGTH} characters`
  try {
    new RegExp(pattern)
  } catch (err) {
    return `is not a valid regular expression (${(err as Error).message})`
  }
  // star height > 1 ((a+)+, (a*)*): backtracking that grows exponentially with the input
  if (!safeRegex(pattern)) return 'can backtrack catastrophically (a repeated group that repeats, such as (a+)+); rewrite it without nested repetition'
  return undefined
}

export interface ConditionProblem {
  /** the key of the condition at fault (value, values[2], op...) */
  readonly field: string
  readonly message: string
}

function valueProblem (op: Operator, v: string | number): string | undefined {
  switch (op) {
    case 'NUM_EQ': case 'NUM_GT': case 'NUM_GTE': case 'NUM_LT': case 'NUM_LTE':
      return parseNumber(v) === undefined ? `${JSON.stringify(v)} is not a number` : undefined
    case 'DATE_AFTER': case 'DATE_BEFORE':
      return parseDate(v) === undefined ? `${JSON.stringify(v)} is not an ISO 8601 date or epoch seconds` : undefined
    case 'SEMVER_EQ': case 'SEMVER_GT': case 'SEMVER_LT':
      return parseSemver(v) === undefined ? `${JSON.stringify(v)} is not a semantic version (write it as a string: "5.0.0")` : undefined
    case 'REGEX': return typeof v === 'string' ? regexProblem(v) : 'must be a string'
    case 'IN_CIDR': return parseCidr(v) === undefined ? `${JSON.stringify(v)} is not an IP address or CIDR block` : undefined
    default: return undefined
  }
}

const EXAMPLES: Record<string, string> = {
  list: '{ attribute: tier, op: IN, values: [staff, qa] }',
  NUM: '{ attribute: orders, op: NUM_GTE, value: 3 }',
  DATE: '{ attribute: registeredAt, op: DATE_AFTER, value: "2026-11-01T00:00:00Z" }',
  SEMVER: '{ attribute: appVersion, op: SEMVER_GT, value: "5.0.0" }',
  REGEX: '{ attribute: email, op: REGEX, value: "@example\\\\.com$" }',
  IN_CIDR: '{ attribute: clientIp, op: IN_CIDR, values: [10.0.0.0/8] }'
}
/** a valid condition for an operator, for error messages */
export function exampleCondition (op: Operator): string {
  if (op === 'IN_CIDR') return EXAMPLES.IN_CIDR as string
  if (LIST_OPERATORS.has(op)) return (EXAMPLES.list as string).replace('IN', op)
  return EXAMPLES[op.split('_')[0] as string] ?? (EXAMPLES.NUM as string)
}

/** what is wrong with one condition beyond its shape (the schema checks that) */
export function conditionProblems (c: ConditionSpec, attributes: readonly string[]): ConditionProblem[] {
  const out: ConditionProblem[] = []
  if (!attributes.includes(c.attribute)) {
    out.push({ field: 'attribute', message: `no attribute named ${c.attribute} (attributes: ${attributes.join(', ') || 'none'}); declare it under the rollout's attributes` })
  }
  if (LIST_OPERATORS.has(c.op)) {
    if (c.values === undefined) out.push({ field: 'values', message: `is required for op ${c.op}${c.value !== undefined ? ` (it takes a list, not value)` : ''}` })
    else c.values.forEach((v, i) => { const p = valueProblem(c.op, v); if (p !== undefined) out.push({ field: `values[${i}]`, message: p }) })
  } else {
    if (c.value === undefined) out.push({ field: 'value', message: `is required for op ${c.op}${c.values !== undefined ? ' (it takes one value, not values)' : ''}` })
    else { const p = valueProblem(c.op, c.value); if (p !== undefined) out.push({ field: 'value', message: p }) }
  }
  if (c.caseInsensitive === true && !STRING_OPERATORS.has(c.op)) out.push({ field: 'caseInsensitive', message: `applies to string operators only (${[...STRING_OPERATORS].join(', ')}), not ${c.op}` })
  return out
}
