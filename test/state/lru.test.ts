// the affinity LRU with injected time: expiry at exactly its instant, least recently used out first
import t from 'tap'
import { AffinityLru } from '../../src/state/lru.js'

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
