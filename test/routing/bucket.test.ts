import t from 'tap'
import murmur from 'murmurhash3js-revisited'
import { bucketOf, encodeSalt, hash32, thresholdOf, BUCKETS } from '../../src/routing/index.js'

const bytes = (s: string) => Buffer.from(s, 'utf8')

t.test('golden vectors over UTF-8 bytes', async (t) => {
  // Unleash's published values: hash32("gr1:123") % 100 + 1 === 73, hash32("groupX:999") % 100 + 1 === 25
  t.equal(hash32(encodeSalt('gr1'), '123') % 100 + 1, 73)
  t.equal(hash32(encodeSalt('groupX'), '999') % 100 + 1, 25)
  // the C++ reference MurmurHash3_x86_32, seed 0
  t.equal(murmur.x86.hash32(bytes('My hovercraft is full of eels.'), 0), 2953494853)
  // non-ASCII keys: values computed with smhasher's MurmurHash3_x86_32 (C) over the same UTF-8 bytes
  t.equal(hash32(encodeSalt('checkout-2026'), '用户7'), 4181563401)
  t.equal(hash32(encodeSalt('checkout-2026'), 'Zoë'), 3356363666)
  t.equal(hash32(encodeSalt('s'), '用户7'), 256121091)
  t.equal(hash32(encodeSalt('s'), 'Zoë'), 2710864171)
  t.equal(bucketOf(encodeSalt('checkout-2026'), 'u1'), 907674910 % BUCKETS)
})

t.test('the package answers undefined for a string: never routed', async (t) => {
  t.equal(murmur.x86.hash32('gr1:123' as unknown as number[], 0), undefined, 'the trap the guard exists for')
  // a key too long to hash is refused with -1, which routes nobody to new
  t.equal(hash32(encodeSalt('s'), 'x'.repeat(5000)), -1)
  t.equal(bucketOf(encodeSalt('s'), 'x'.repeat(5000)), -1)
})

t.test('percent to threshold keeps two decimals', async (t) => {
  t.equal(thresholdOf(5), 500)
  t.equal(thresholdOf(5.55), 555)
  t.equal(thresholdOf(0.01), 1)
  t.equal(thresholdOf(99.99), 9999)
  t.equal(thresholdOf(100), 10_000)
  t.equal(thresholdOf(37.5), 3750)
})

t.test('distribution: 100,000 keys land within ±0.3 points of the target', async (t) => {
  const salt = encodeSalt('dist-test')
  const buckets = new Uint16Array(100_000)
  for (let i = 0; i < buckets.length; i++) buckets[i] = bucketOf(salt, `user-${i}`)
  const figures: Record<string, number> = {}
  for (const pct of [5, 37.5, 50]) {
    const thr = thresholdOf(pct)
    let n = 0
    for (const b of buckets) if (b < thr) n++
    const observed = (n / buckets.length) * 100
    figures[pct] = observed
    t.ok(Math.abs(observed - pct) <= 0.3, `${pct}%: observed ${observed.toFixed(3)}%`)
  }
  t.comment(`distribution: ${JSON.stringify(figures)}`)
})

t.test('monotonic ramp and salt reshuffle', async (t) => {
  const grid = [0, 0.01, 1, 5, 10, 25, 50, 99.99, 100]
  const salt = encodeSalt('ramp')
  const keys = Array.from({ length: 20_000 }, (_, i) => `k${i}`)
  const buckets = keys.map((k) => bucketOf(salt, k))
  for (let i = 0; i < grid.length; i++) {
    for (let j = i + 1; j < grid.length; j++) {
      const p = thresholdOf(grid[i] as number)
      const q = thresholdOf(grid[j] as number)
      const moved = buckets.filter((b) => b < p && !(b < q)).length
      t.equal(moved, 0, `every key on new at ${grid[i]}% is on new at ${grid[j]}%`)
    }
  }
  t.equal(buckets.filter((b) => b < 0).length, 0, 'no key failed to hash')
  t.equal(buckets.filter((b) => b < thresholdOf(100)).length, keys.length, '100% is everyone')
  t.equal(buckets.filter((b) => b < thresholdOf(0)).length, 0, '0% is nobody')
  const other = encodeSalt('ramp-2')
  const moved = keys.filter((k, i) => (bucketOf(other, k) < 5000) !== ((buckets[i] as number) < 5000)).length
  t.ok(moved > keys.length * 0.4 && moved < keys.length * 0.6, `a new salt reshuffles about half at 50% (${moved} of ${keys.length})`)
})
