import t from 'tap'
import { createNoiseTracker } from '../../src/shadow/noise.js'
import { compileComparer } from '../../src/shadow/compare.js'
import type { Answer } from '../../src/shadow/compare.js'

function json (body: unknown): Answer {
  return { status: 200, headers: {}, body: Buffer.from(JSON.stringify(body)) }
}

t.test('a timestamp that differs between two legacy answers is learned as noise', async (t) => {
  const c = compileComparer({ ignore: [], headers: [], numericTolerance: 0, unorderedArrays: false })
  const noise = createNoiseTracker()
  // two answers from the same system: only the timestamp and the request id move
  const same = c.compare(
    json({ servedAt: '03:00:00', requestId: 'r1', items: [{ price: 10 }] }),
    json({ servedAt: '03:00:01', requestId: 'r2', items: [{ price: 10 }] })
  )
  noise.observe(same.fields)
  t.same(noise.fields(), ['$.requestId', '$.servedAt'])
  t.equal(noise.isNoise('$.servedAt'), true)
  t.equal(noise.isNoise('$.items[*].price'), false)

  // primary vs shadow: the timestamp is noise, the price is real
  const diff = c.compare(
    json({ servedAt: '03:00:02', requestId: 'r3', items: [{ price: 10 }] }),
    json({ servedAt: '03:00:03', requestId: 'r3', items: [{ price: 11 }] })
  )
  t.same(noise.filter(diff.fields), { real: ['$.items[*].price'], noise: ['$.servedAt'] })
})

t.test('learning is bounded and never learns (more)', async (t) => {
  const noise = createNoiseTracker({ maxFields: 2 })
  noise.observe(['$.c', '(more)'])
  noise.observe(['$.b', '$.a'])
  t.same(noise.fields(), ['$.b', '$.c'])
  t.same(noise.filter(['$.a', '$.b', '(more)']), { real: ['$.a', '(more)'], noise: ['$.b'] })
  const dflt = createNoiseTracker()
  dflt.observe(Array.from({ length: 300 }, (_, i) => `$.f${i}`))
  t.equal(dflt.fields().length, 200)
})
