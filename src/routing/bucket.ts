// bucket = murmurhash3_x86_32(utf8(salt + ":" + key), seed 0) mod 10000 (DESIGN.md §1)
import murmur from 'murmurhash3js-revisited'

export const BUCKETS = 10_000
/** keys longer than this are not cohort keys (a 10 KB header is garbage, not a user) */
export const MAX_KEY_BYTES = 512

export type SaltPrefix = Buffer

/** encode `salt + ":"` once, at load time */
export function encodeSalt (salt: string): SaltPrefix {
  return Buffer.from(salt + ':', 'utf8')
}

// one scratch buffer for all hashing: salt prefix + key bytes are copied in, no per-request
// allocation beyond the view handed to murmur (the event loop is single-threaded, so sharing is safe)
const scratch = Buffer.allocUnsafe(4096)

/**
 * murmur3 x86 32-bit of salt:key over UTF-8 bytes, or -1 when the key cannot be hashed
 * (too long, or the library refused the input); -1 never routes anyone to new
 */
export function hash32 (prefix: SaltPrefix, key: string): number {
  const plen = prefix.length
  // utf8 needs at most 3 bytes per UTF-16 unit
  if (key.length * 3 + plen > scratch.length) return -1
  prefix.copy(scratch, 0)
  const n = plen + scratch.write(key, plen, 'utf8')
  // the package answers undefined (not a throw) for input it does not accept: a hash that is
  // not a number must never silently route
  const h = murmur.x86.hash32(scratch.subarray(0, n), 0) as unknown
  return typeof h === 'number' && h >= 0 ? h : -1
}

/** the cohort bucket, 0..9999, or -1 for a key that cannot be bucketed */
export function bucketOf (prefix: SaltPrefix, key: string): number {
  const h = hash32(prefix, key)
  return h < 0 ? -1 : h % BUCKETS
}

/** percent (two decimals) as a bucket threshold: new iff bucket < threshold */
export function thresholdOf (percent: number): number {
  return Math.round(percent * 100)
}
