import t from 'tap'
import { compileComparer, compilePaths, keySegment } from '../../src/shadow/compare.js'
import type { Answer, CompareOptions } from '../../src/shadow/compare.js'

const base: CompareOptions = { ignore: [], headers: [], numericTolerance: 0, unorderedArrays: false }

function json (body: unknown, status = 200, headers: Answer['headers'] = {}): Answer {
  return { status, headers, body: Buffer.from(JSON.stringify(body)) }
}

const order = {
  id: 'o1',
  createdAt: '2026-11-25T03:00:00.000Z',
  items: [{ id: 'a', sku: 'x', price: 10 }, { id: 'b', sku: 'y', price: 20 }],
  total: 30
}

t.test('equal bodies with reordered keys match', async (t) => {
  const c = compileComparer(base)
  const reordered = { total: 30, items: [{ price: 10, sku: 'x', id: 'a' }, { sku: 'y', price: 20, id: 'b' }], createdAt: order.createdAt, id: 'o1' }
  t.same(c.compare(json(order), json(reordered)), { equal: true, fields: [] })
})

t.test('a changed price in one item is reported at a templated path', async (t) => {
  const c = compileComparer(base)
  const changed = structuredClone(order)
  changed.items[1]!.price = 21
  t.same(c.compare(json(order), json(changed)), { equal: false, fields: ['$.items[*].price'] })
})

t.test('missing, extra and retyped keys, array length and nested differences', async (t) => {
  const c = compileComparer(base)
  const a = { a: 1, b: 'x', c: [1, 2], d: { e: null }, 'weird key': 1 }
  const b = { a: '1', c: [1, 2, 3], d: { e: false }, f: true, 'weird key': 2 }
  t.same(c.compare(json(a), json(b)), {
    equal: false,
    fields: ['$.a', '$.b', '$.c[*]', '$.d.e', '$.f', '$["weird key"]']
  })
  // a top-level type change is a difference of the whole body
  t.same(c.compare(json([1]), json({ 0: 1 })), { equal: false, fields: ['$'] })
})

t.test('ignored paths and their subtrees are ignored', async (t) => {
  const c = compileComparer({ ...base, ignore: ['$.createdAt', '$.items[*].id', '$.meta'] })
  const other = structuredClone(order) as typeof order & { meta?: unknown }
  other.createdAt = '2026-11-25T03:00:01.000Z'
  other.items[0]!.id = 'zzz'
  other.meta = { trace: 'abc' }
  t.same(c.compare(json(order), json(other)), { equal: true, fields: [] })
  // what is not ignored still counts
  other.total = 31
  t.same(c.compare(json(order), json(other)), { equal: false, fields: ['$.total'] })
  // ignoring $ ignores the whole body, not status
  const all = compileComparer({ ...base, ignore: ['$'] })
  t.same(all.compare(json(order, 200), json({}, 201)), { equal: false, fields: ['status'] })
})

t.test('ignore paths with quoted keys; bad paths throw a config error', async (t) => {
  const c = compileComparer({ ...base, ignore: ['$["weird key"].x'] })
  t.same(c.compare(json({ 'weird key': { x: 1, y: 1 } }), json({ 'weird key': { x: 2, y: 2 } })), {
    equal: false,
    fields: ['$["weird key"].y']
  })
  for (const bad of ['items', '$..a', '$[0]', '$["open', '$[]', '$["\\q"]']) {
    t.throws(() => compilePaths([bad]), { code: 'DUALTRACK_ERR_CONFIG_INVALID' }, bad)
  }
})

t.test('numeric tolerance is relative with a floor of 1', async (t) => {
  const c = compileComparer({ ...base, numericTolerance: 0.001 })
  t.same(c.compare(json({ p: 10.0 }), json({ p: 10.005 })), { equal: true, fields: [] })
  t.same(c.compare(json({ p: 10.0 }), json({ p: 10.02 })), { equal: false, fields: ['$.p'] })
  // near zero the floor makes it absolute: 0.0005 away is within 0.001 * 1
  t.same(c.compare(json({ p: 0 }), json({ p: 0.0005 })), { equal: true, fields: [] })
  t.same(c.compare(json({ p: 0 }), json({ p: 0.002 })), { equal: false, fields: ['$.p'] })
  const exact = compileComparer(base)
  t.same(exact.compare(json({ p: 10.0 }), json({ p: 10.005 })), { equal: false, fields: ['$.p'] })
})

t.test('unordered arrays compare as multisets', async (t) => {
  const ordered = compileComparer(base)
  const unordered = compileComparer({ ...base, unorderedArrays: true, ignore: ['$.items[*].id'], numericTolerance: 0.001 })
  const a = { items: [{ id: 1, sku: 'x' }, { id: 2, sku: 'y' }, { id: 3, sku: 'y' }] }
  const b = { items: [{ id: 9, sku: 'y' }, { id: 8, sku: 'x' }, { id: 7, sku: 'y' }] }
  t.same(ordered.compare(json(a), json(b)), { equal: false, fields: ['$.items[*].id', '$.items[*].sku'] })
  t.same(unordered.compare(json(a), json(b)), { equal: true, fields: [] })
  t.same(unordered.compare(json({ v: [1, 2.0001, 3] }), json({ v: [3, 2, 1] })), { equal: true, fields: [] })
  // multiplicity counts: one y is not two
  t.same(unordered.compare(json(a), json({ items: [{ sku: 'x' }, { sku: 'y' }, { sku: 'x' }] })), {
    equal: false,
    fields: ['$.items[*]']
  })
  t.same(unordered.compare(json({ v: [1, 2] }), json({ v: [2, 1, 1] })), { equal: false, fields: ['$.v[*]'] })
  t.same(unordered.compare(json({ v: [1, 2, 5] }), json({ v: [2, 1, 4] })), { equal: false, fields: ['$.v[*]'] })
})

t.test('status and chosen header differences', async (t) => {
  const c = compileComparer({ ...base, headers: ['Content-Type', 'x-version'] })
  const a = json(order, 200, { 'content-type': 'application/json', 'x-version': ['1', '2'], date: 'a' })
  t.same(c.compare(a, json(order, 200, { 'Content-Type': 'application/json', 'X-Version': ['1', '2'], date: 'b' })), {
    equal: true,
    fields: []
  })
  t.same(c.compare(a, json(order, 201, { 'content-type': 'application/json; charset=utf-8', 'x-version': ['1'] })), {
    equal: false,
    fields: ['header:content-type', 'header:x-version', 'status']
  })
  // absent on one side only
  t.same(c.compare(json(order, 200, {}), json(order, 200, { 'x-version': '1', 'content-type': undefined })), {
    equal: false,
    fields: ['header:x-version']
  })
})

t.test('non-JSON bodies are compared by digest as the whole body', async (t) => {
  const c = compileComparer(base)
  const html = (s: string): Answer => ({ status: 200, headers: {}, body: Buffer.from(s) })
  t.same(c.compare(html('<p>ok</p>'), html('<p>ok</p>')), { equal: true, fields: [] })
  t.same(c.compare(html('<p>ok</p>'), html('<p>no</p>')), { equal: false, fields: ['$'] })
  t.same(c.compare(html('<p>ok</p>'), html('<p>okay</p>')), { equal: false, fields: ['$'] })
  t.same(c.compare(html(''), html('')), { equal: true, fields: [] })
  // JSON on one side only
  t.same(c.compare(json({ a: 1 }), html('{"a":1')), { equal: false, fields: ['$'] })
})

t.test('id-like keys are templated', async (t) => {
  const c = compileComparer(base)
  const uuid = '123e4567-e89b-12d3-a456-426614174000'
  const long = 'k'.repeat(65)
  const a = { orders: { 1001: { total: 1 }, [uuid]: { total: 1 }, [long]: 1 } }
  const b = { orders: { 1001: { total: 2 }, [uuid]: { total: 3 }, [long]: 2 } }
  t.same(c.compare(json(a), json(b)), { equal: false, fields: ['$.orders[*]', '$.orders[*].total'] })
  t.equal(keySegment('price'), '.price')
  t.equal(keySegment('k'.repeat(64)), '.' + 'k'.repeat(64))
  t.equal(keySegment('a-b'), '["a-b"]')
})

t.test('fields are capped, with a final (more)', async (t) => {
  const a: Record<string, number> = {}
  const b: Record<string, number> = {}
  for (let i = 0; i < 10; i++) {
    a['f' + i] = i
    b['f' + i] = i + 1
  }
  const c = compileComparer({ ...base, maxFields: 3 })
  t.same(c.compare(json(a, 200), json(b, 500)), { equal: false, fields: ['$.f0', '$.f1', 'status', '(more)'] })
  const exact = compileComparer({ ...base, maxFields: 10 })
  t.equal(exact.compare(json(a), json(b)).fields.length, 10)
  t.notOk(exact.compare(json(a), json(b)).fields.includes('(more)'))
  // the default cap is 50
  for (let i = 10; i < 60; i++) {
    a['f' + i] = i
    b['f' + i] = -i
  }
  const d = compileComparer(base).compare(json(a), json(b)).fields
  t.equal(d.length, 51)
  t.equal(d.at(-1), '(more)')
})
