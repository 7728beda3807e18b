// admin tokens: read from the config (usually ${ENV}) or from a file (a mounted Secret, re-read when
// it changes), and refused when they look like a placeholder or are too weak to be a secret
import { readFileSync } from 'node:fs'

/** a token shorter than this is refused */
export const MIN_TOKEN_CHARS = 24
/** estimated bits (Shannon entropy of its characters × its length) a token must reach */
export const MIN_TOKEN_BITS = 80

const PLACEHOLDER = /replace[-_ ]?me|change[-_ ]?me|placeholder|your[-_ ]?token|^x+$|example/i

function estimatedBits (token: string): number {
  const counts = new Map<string, number>()
  for (const c of token) counts.set(c, (counts.get(c) ?? 0) + 1)
  let h = 0
  for (const n of counts.values()) {
    const p = n / token.length
    h -= p * Math.log2(p)
  }
  return h * token.length
}

/** why a token must not be used, or undefined when it may */
export function tokenWeakness (token: string): string | undefined {
  if (PLACEHOLDER.test(token)) return 'looks like a placeholder (REPLACE-ME...): make a real one with `openssl rand -hex 32`'
  if (token.length < MIN_TOKEN_CHARS) return `is ${token.length} characters; use at least ${MIN_TOKEN_CHARS} (\`openssl rand -hex 32\`)`
  const bits = estimatedBits(token)
  if (bits < MIN_TOKEN_BITS) return `is too predictable (about ${Math.round(bits)} bits; at least ${MIN_TOKEN_BITS}): make one with \`openssl rand -hex 32\``
  return undefined
}

/** the token in a file, without the trailing newline editors and `echo` add */
export function readTokenFile (path: string): string {
  return readFileSync(path, 'utf8').replace(/\r?\n$/, '')
}
