// micro: comparing a primary answer with its shadow copy (dist/shadow/compare.js), ~1 KB JSON
//   node bench/micro/compare.js
import { bench, group, run, summary, do_not_optimize } from 'mitata'
import { importDist } from './dist.js'
import { sampleOrder } from '../lib/order.js'

const { compileComparer } = await importDist('shadow/compare.js', ['compileComparer'])

// the same padding on every variant, so that only the fields meant to differ do
let pad = ''
function order (over = {}) {
  const o = sampleOrder({ buyer: { id: 'u-42', name: 'Li Lei', tier: 'gold', address: 'No. 1 Example Road, Hangzhou' }, ...over })
  o.pad = pad
  return o
}
pad = 'x'.repeat(Math.max(0, 1024 - JSON.stringify(order()).length))

const headers = { 'content-type': 'application/json; charset=utf-8' }
const answer = (o) => ({ status: 200, headers, body: Buffer.from(JSON.stringify(o)) })
const primary = answer(order())
const same = answer(order())
// differs only where ignored (createdAt, item ids) and within tolerance
const noisy = answer(order({ createdAt: '2026-11-25T03:00:01.123Z', total: 474.3000001, items: order().items.map((it, k) => ({ ...it, id: `j-${k}` })) }))
const differs = answer(order({ status: 'pending', total: 480, items: order().items.map((it) => ({ ...it, price: it.price + 1 })) }))
console.log(`body ${primary.body.length} bytes`)

const plain = compileComparer({ ignore: [], headers: ['content-type'], numericTolerance: 0, unorderedArrays: false })
const configured = compileComparer({ ignore: ['$.createdAt', '$.items[*].id'], headers: ['content-type'], numericTolerance: 0.001, unorderedArrays: false })
const unordered = compileComparer({ ignore: ['$.createdAt', '$.items[*].id'], headers: ['content-type'], numericTolerance: 0.001, unorderedArrays: true })
console.log('sanity:', JSON.stringify({ equal: plain.compare(primary, same), ignored: configured.compare(primary, noisy), differs: configured.compare(primary, differs) }))

summary(() => {
  group('compare ~1 KB JSON (parse both bodies + walk)', () => {
    bench('equal, no options', () => do_not_optimize(plain.compare(primary, same)))
    bench('equal after ignore + tolerance', () => do_not_optimize(configured.compare(primary, noisy)))
    bench('3 fields differ (5 values)', () => do_not_optimize(configured.compare(primary, differs)))
    bench('unorderedArrays, equal after ignore', () => do_not_optimize(unordered.compare(primary, noisy)))
    bench('reference: JSON.parse of both bodies only', () => do_not_optimize([JSON.parse(primary.body), JSON.parse(noisy.body)]))
  })
})

// colors only on a terminal: the output is pasted into issues and results
await run({ colors: process.stdout.isTTY === true })
