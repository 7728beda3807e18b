// bucket = murmurhash3_x86_32(utf8(salt + ":" + key), seed 0) mod 10000 (DESIGN.md §1)

export const BUCKETS = 10_000
/** keys longer than this are not cohort keys (a 10 KB header is garbage, not a user) */
export const MAX_KEY_BYTES = 512

export type SaltPrefix = Buffer

/** encode `salt + ":"` once, at load time */
export function encodeSalt (salt: string): SaltPrefix {
  return Buffer.from(salt + ':', 'utf8')
}

// one scratch buffer for all hashing: salt prefix + key bytes are copied in and hashed where they
// lie, no per-request allocation (the event loop is single-threaded, so sharing is safe)
const scratch = Buffer.allocUnsafe(4096)

/**
 * murmur3 x86 32-bit of salt:key over UTF-8 bytes, or -1 when the key cannot be hashed
 * (too long); -1 never routes anyone to new
 */
export function hash32 (prefix: SaltPrefix, key: string): number {
  const plen = prefix.length
  // utf8 needs at most 3 bytes per UTF-16 unit
  if (key.length * 3 + plen > scratch.length) return -1
  prefix.copy(scratch, 0)
  return murmur3x86(scratch, plen + scratch.write(key, plen, 'utf8'))
}

/**
 * MurmurHash3_x86_32 (smhasher's reference) of b[0, n), seed 0, written out here so that it reads
 * the scratch buffer in place: the murmurhash3js-revisited package wants a buffer of the exact
 * length (a subarray, an allocation per request) and checks every byte first; this is a third of
 * the decision's time gone. test/routing/bucket.test.ts holds it to the package and to the C
 * reference's values
 */
function murmur3x86 (b: Buffer, n: number): number {
  let h = 0
  let i = 0
  const blocks = n & ~3
  for (; i < blocks; i += 4) {
    let k = (b[i] as number) | ((b[i + 1] as number) << 8) | ((b[i + 2] as number) << 16) | ((b[i + 3] as number) << 24)
    k = Math.imul(k, 0xcc9e2d51)
    k = (k << 15) | (k >>> 17)
    k = Math.imul(k, 0x1b873593)
    h ^= k
    h = (h << 13) | (h >>> 19)
    h = (Math.imul(h, 5) + 0xe6546b64) | 0
  }
  const rest = n & 3
  if (rest > 0) {
    let k = b[i] as number
    if (rest > 1) k |= (b[i + 1] as number) << 8
    if (rest > 2) k |= (b[i + 2] as number) << 16
    k = Math.imul(k, 0xcc9e2d51)
    k = (k << 15) | (k >>> 17)
    k = Math.imul(k, 0x1b873593)
    h ^= k
  }
  h ^= n
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
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
