// redact personal data from mismatch samples before they are stored or logged (DESIGN.md §4):
// configured paths become "[redacted]"; card, phone, ID numbers and emails are masked in every string
import { compilePaths, endsHere, stepPaths } from './compare.js'
import type { PathNode } from './compare.js'

export const REDACTED = '[redacted]'

export type Redactor = (value: unknown) => unknown

// each pattern starts only where the previous character cannot continue it, and every repetition
// is bounded, so a long hostile string is scanned in linear time
const EMAIL = /(?<![\w.%+-])[\w.%+-]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}(?![A-Za-z0-9-])/g
// + then 8 to 15 digits, optionally spaced or dashed
const INTL_PHONE = /\+\d(?:[ -]?\d){7,14}(?!\d)/g
// chinese resident ID: 17 digits and a check digit or X
const CN_ID = /(?<!\d)\d{17}[\dXx](?![\dA-Za-z])/g
const US_SSN = /(?<!\d)\d{3}-\d{2}-\d{4}(?!\d)/g
// 13 to 19 digits, optionally spaced or dashed; kept only when some run passes Luhn
const CARD = /(?<!\d)\d(?:[ -]?\d){12,18}(?!\d)/g
// chinese mobile, also written 138 1234 5678 or 138-1234-5678
const CN_MOBILE = /(?<!\d)1[3-9]\d[ -]?\d{4}[ -]?\d{4}(?!\d)/g
const CN_MOBILE_EXACT = /^1[3-9]\d{9}$/
// strings without a digit or an @ hold nothing to mask: skip the regexes
const MAYBE_SENSITIVE = /[\d@]/

/** mask card numbers (last 4 kept), phone numbers, ID numbers and emails inside a string */
export function redactText (s: string): string {
  if (!MAYBE_SENSITIVE.test(s)) return s
  return s
    .replace(EMAIL, '[email]')
    .replace(INTL_PHONE, '[phone]')
    .replace(CN_ID, '[id]')
    .replace(US_SSN, '[id]')
    .replace(CARD, maskCards)
    .replace(CN_MOBILE, '[phone]')
}

/** Luhn check over a string of digits */
export function luhn (digits: string): boolean {
  let sum = 0
  let double = false
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48
    if (double) {
      d *= 2
      if (d > 9) d -= 9
    }
    sum += d
    double = !double
  }
  return sum % 10 === 0
}

function maskCard (digits: string): string {
  return '*'.repeat(digits.length - 4) + digits.slice(-4)
}

// a digit run may be a card followed by something else (a CVV, an expiry): when the whole run fails
// Luhn, look for a card made of consecutive groups inside it, longest first
function maskCards (run: string): string {
  const whole = run.replace(/[ -]/g, '')
  if (luhn(whole)) return maskCard(whole)
  // even indices are digit groups, odd ones the separators between them
  const parts = run.split(/([ -])/)
  let out = ''
  let i = 0
  while (i < parts.length) {
    let end = -1
    for (let j = parts.length - 1; j >= i && end < 0; j -= 2) {
      const digits = parts.slice(i, j + 1).join('').replace(/[ -]/g, '')
      if (digits.length >= 13 && digits.length <= 19 && luhn(digits)) {
        out += maskCard(digits)
        end = j
      }
    }
    if (end < 0) {
      out += parts[i] ?? ''
      end = i
    }
    out += parts[end + 1] ?? ''
    i = end + 2
  }
  return out
}

function redactNumber (n: number): unknown {
  // integers only: String() of a 13..19 digit integer is plain digits (exponent form starts at 1e21)
  if (!Number.isInteger(n) || n < 0) return n
  const s = String(n)
  if (s.length >= 13 && s.length <= 19 && luhn(s)) return maskCard(s)
  // a phone stored as a number leaks as easily as one in a string
  if (CN_MOBILE_EXACT.test(s)) return '[phone]'
  return n
}

/** compile the configured `redact` paths once; the redactor deep-copies, never mutates its input */
export function compileRedactor (paths: readonly string[]): Redactor {
  const root = compilePaths(paths)
  const rootNodes: readonly PathNode[] = paths.length === 0 ? [] : [root]
  return (value) => copy(value, rootNodes)
}

function copy (v: unknown, nodes: readonly PathNode[]): unknown {
  if (endsHere(nodes)) return REDACTED
  if (typeof v === 'string') return redactText(v)
  if (typeof v === 'number') return redactNumber(v)
  if (v === null || typeof v !== 'object') return v
  if (Array.isArray(v)) {
    const next = stepPaths(nodes, null)
    return v.map((x) => copy(x, next))
  }
  const out: Record<string, unknown> = {}
  for (const [k, x] of Object.entries(v)) {
    const value = copy(x, stepPaths(nodes, k))
    // a "__proto__" key from JSON.parse is data: plain assignment would set the prototype instead
    if (k === '__proto__') Object.defineProperty(out, k, { value, enumerable: true, writable: true, configurable: true })
    else out[k] = value
  }
  return out
}
