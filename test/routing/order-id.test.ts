import t from 'tap'
import { compileLearn, compileLookup, scanTopLevel } from '../../src/routing/order-id.js'

const b = (s: string) => Buffer.from(s)

t.test('the top-level key scanner agrees with JSON.parse', async (t) => {
  const cases: [string, string | undefined][] = [
    ['{"orderId":"NW-1","items":[]}', 'NW-1'],
    ['{ "items": [{"orderId": "nested"}], "orderId" : "top" }', 'top'],
    ['{"a":{"orderId":"deep"},"b":"x\\"orderId\\":\\"fake\\"","orderId":42}', '42'],
    ['{"note":"brace } and [ in a string","orderId":"after"}', 'after'],
    ['{"items":[1,2,{"x":[3,{"y":"z"}]}],"total":9.5,"ok":true,"n":null,"orderId":"late"}', 'late'],
    ['{"other":1}', undefined],
    ['{}', undefined],
    ['{"orderId":{"not":"a string"}}', undefined],
    ['{"orderId":"ü-7"}', 'ü-7']
  ]
  for (const [text, want] of cases) {
    t.equal(scanTopLevel(b(text), 'orderId'), want, text)
    const parsed = JSON.parse(text) as Record<string, unknown>
    const v = parsed.orderId
    t.equal(typeof v === 'string' || typeof v === 'number' ? String(v) : undefined, want, `JSON.parse agrees: ${text}`)
  }
  t.equal(scanTopLevel(b('[1,2]'), 'orderId'), null, 'not an object: parse instead')
  t.equal(scanTopLevel(b('{"orderId":'), 'orderId'), null, 'truncated: parse instead')
})

t.test('learn and lookup sources', async (t) => {
  const learn = compileLearn(['json:$.orderId', 'header:location'])
  t.equal(learn({}, b('{"orderId":"A1"}')), 'A1')
  t.equal(learn({ location: '/api/orders/B%202' }, b('{"x":1}')), 'B 2', 'Location: the last path segment, decoded')
  t.equal(learn({ location: 'https://shop.example/api/orders/C3?x=1' }, undefined), 'C3')
  t.equal(learn({}, b('not json')), undefined)
  const deep = compileLearn(['json:$.data.order.id'])
  t.equal(deep({}, b('{"data":{"order":{"id":77}}}')), '77')
  const lookup = compileLookup(['path:/api/orders/:orderId', 'json:$.orderId', 'form:out_trade_no', 'query:orderId', 'header:x-order-id'])
  t.equal(lookup.needsBody, true)
  const req = (url: string, headers: Record<string, string> = {}) => ({ method: 'POST', url, headers })
  t.equal(lookup.read(req('/api/orders/O-1'), '/api/orders/O-1', undefined, undefined), 'O-1')
  t.equal(lookup.read(req('/api/orders/O-1/items'), '/api/orders/O-1/items', undefined, undefined), undefined, 'whole segments only')
  t.equal(lookup.read(req('/api/payments'), '/api/payments', b('{"orderId":"J-1"}'), 'application/json'), 'J-1')
  t.equal(lookup.read(req('/api/payments/notify'), '/api/payments/notify', b('out_trade_no=F-1&x=2'), 'application/x-www-form-urlencoded'), 'F-1')
  t.equal(lookup.read(req('/api/pay?orderId=Q-1'), '/api/pay', undefined, undefined), 'Q-1')
  t.equal(lookup.read(req('/x', { 'x-order-id': 'H-1' }), '/x', undefined, undefined), 'H-1')
  t.equal(lookup.read(req('/x'), '/x', b('{"orderId":"J-1"}'), 'text/plain'), undefined, 'a json: source reads JSON bodies only')
  t.equal(lookup.read(req('/api/orders/%E0%A4%A'), '/api/orders/%E0%A4%A', undefined, undefined), undefined, 'a broken escape is no id')
})
