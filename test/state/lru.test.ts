// the affinity LRU and the unknown-id set with injected time: expiry at exactly its instant, least
// recently used (or oldest) out first
import t from 'tap'
import { AffinityLru, ExpiringKeys } from '../../src/state/lru.js'

const T0 = 1_000_000

t.test('an entry lives until its expiry instant, not at it', async (t) => {
  const lru = new AffinityLru(10)
  lru.set('o1', 'new', T0 + 100)
  t.same([lru.get('o1', T0), lru.get('o1', T0 + 99)], ['new', 'new'])
  t.equal(lru.get('o1', T0 + 100), undefined, 'expired at its instant')
  t.equal(lru.size, 0, 'and removed')
  t.equal(lru.get('o1', T0), undefined, 'gone, even for an earlier clock')
})

t.test('past maxEntries the least recently used goes; a read counts as a use', async (t) => {
  const lru = new AffinityLru(3)
  for (const k of ['a', 'b', 'c']) lru.set(k, 'legacy', T0 + 1000)
  t.equal(lru.get('a', T0), 'legacy', 'a is now the most recent')
  lru.set('d', 'new', T0 + 1000)
  t.same([...lru.entries()].map(([k, e]) => [k, e.owner]), [['c', 'legacy'], ['a', 'legacy'], ['d', 'new']], 'b, the least recently used, went')
  lru.set('c', 'new', T0 + 2000)
  t.same([...lru.entries()].map(([k, e]) => [k, e.owner, e.expires]), [['a', 'legacy', T0 + 1000], ['d', 'new', T0 + 1000], ['c', 'new', T0 + 2000]], 'a set replaces and refreshes')
  t.equal(lru.size, 3)
})

t.test('an unknown id is remembered for the ttl from when it was added, not at its end', async (t) => {
  const keys = new ExpiringKeys(1000, 10)
  keys.add('o1', T0)
  t.same([keys.has('o1', T0), keys.has('o1', T0 + 999)], [true, true])
  t.equal(keys.has('o1', T0 + 1000), false, 'expired at its instant')
  t.equal(keys.has('o2', T0), false, 'never added')
  t.equal(keys.size, 1, 'an expired key stays until an add clears it')
  keys.add('o2', T0 + 1000)
  t.equal(keys.size, 1, 'the add cleared the expired one')
  t.same([keys.has('o1', T0), keys.has('o2', T0 + 1999)], [false, true], 'o1 gone, even for an earlier clock')
})

t.test('an add clears every expired key before the first live one, and only those', async (t) => {
  const keys = new ExpiringKeys(100, 1000)
  for (let i = 0; i < 50; i++) keys.add(`a${i}`, T0 + i)
  keys.add('late', T0 + 120)
  // a0..a20 expired by T0 + 120 (added at T0..T0 + 20)
  t.equal(keys.size, 30, '21 expired keys went, 29 live ones and the new one stay')
  t.equal(keys.has('a20', T0), false)
  t.equal(keys.has('a21', T0), true)
  // a second add of a key moves its expiry to the back: it outlives keys added before its re-add
  keys.add('a21', T0 + 150)
  keys.add('x', T0 + 200)
  t.same(['a21', 'a49', 'late', 'x'].map((k) => keys.has(k, T0 + 200)), [true, false, true, true], 'a21 re-added lives on, a49 expired')
  t.equal(keys.size, 3)
  t.equal(keys.has('a21', T0 + 250), false, 'a21 expires a ttl after its re-add')
})

t.test('a deleted key is unknown at once, and can be added again', async (t) => {
  const keys = new ExpiringKeys(1000, 10)
  keys.add('o1', T0)
  keys.add('o2', T0)
  keys.delete('o1')
  t.same([keys.has('o1', T0), keys.size], [false, 1])
  keys.add('o1', T0 + 500)
  keys.add('o3', T0 + 1200)
  t.same(['o1', 'o2', 'o3'].map((k) => keys.has(k, T0 + 1200)), [true, false, true], 'o1 counts from its new add, o2 expired')
  t.equal(keys.size, 2)
})

t.test('past max the oldest key goes, expired or not; a re-add counts as new', async (t) => {
  const keys = new ExpiringKeys(1000, 3)
  for (const k of ['a', 'b', 'c']) keys.add(k, T0)
  keys.add('a', T0 + 1)
  keys.add('d', T0 + 2)
  t.same(['a', 'b', 'c', 'd'].map((k) => keys.has(k, T0 + 2)), [true, false, true, true], 'b, the oldest, went; a was re-added after it')
  keys.delete('c')
  keys.add('e', T0 + 3)
  t.same(['a', 'c', 'd', 'e'].map((k) => keys.has(k, T0 + 3)), [true, false, true, true], 'a deleted key leaves room')
  t.equal(keys.size, 3)
  for (let i = 0; i < 5000; i++) keys.add(`k${i}`, T0 + 10 + i / 10)
  t.equal(keys.size, 3, 'never more than max, however many adds')
  t.same(['k4997', 'k4998', 'k4999'].map((k) => keys.has(k, T0 + 600)), [true, true, true])
})

t.test('many adds over many ttls keep only the live keys', async (t) => {
  const keys = new ExpiringKeys(100, 100_000)
  let now = T0
  for (let i = 0; i < 20_000; i++) {
    now += 0.25
    keys.add(`o${i % 3000}`, now)
  }
  // the last 100 ms: 400 adds, all distinct keys
  t.equal(keys.size, 400)
  t.equal(keys.has(`o${19_999 % 3000}`, now), true)
  t.equal(keys.has(`o${(19_999 - 400) % 3000}`, now), false, 'added 100 ms ago: expired')
})
