import t from 'tap'
import { compileXmlText, isXmlType, MAX_XML_ELEMENTS } from '../../src/routing/xml-text.js'
import { compileLearn, compileLookup, compileJsonPath } from '../../src/routing/order-id.js'
import { parseConfig } from '../../src/config/index.js'

const b = (s: string) => Buffer.from(s)
const outTradeNo = compileXmlText('out_trade_no', 1024)

const WECHAT = `<xml>
  <appid><![CDATA[wx2421b1c4370ec43b]]></appid>
  <out_trade_no><![CDATA[1217752501201407033233368018]]></out_trade_no>
  <result_code><![CDATA[SUCCESS]]></result_code>
</xml>`

// the billion laughs: ten levels of ten, 10^9 "lol"s if anything expanded it
const LAUGHS = `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">${
  Array.from({ length: 9 }, (_, i) => `<!ENTITY lol${i + 1} "${`&lol${i === 0 ? '' : i};`.repeat(10)}">`).join('')
}]><xml><out_trade_no>&lol9;</out_trade_no></xml>`
const XXE = '<?xml version="1.0"?><!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><xml><out_trade_no>&xxe;</out_trade_no></xml>'

t.test('the first element with the local name: text, CDATA, prefixes, predefined entities', async (t) => {
  t.same(outTradeNo(b(WECHAT)), { outcome: 'found', text: '1217752501201407033233368018' })
  t.same(outTradeNo('<?xml version="1.0" encoding="UTF-8"?><xml><out_trade_no>A-1</out_trade_no><out_trade_no>A-2</out_trade_no></xml>'),
    { outcome: 'found', text: 'A-1' }, 'the first one wins; the XML declaration is fine')
  t.same(outTradeNo('<w:xml xmlns:w="urn:x"><w:out_trade_no>P-1</w:out_trade_no></w:xml>'), { outcome: 'found', text: 'P-1' }, 'any prefix')
  t.same(outTradeNo('<xml><out_trade_no_x>no</out_trade_no_x><my_out_trade_no>no</my_out_trade_no><out_trade_no>Y</out_trade_no></xml>'),
    { outcome: 'found', text: 'Y' }, 'whole local names only')
  t.same(outTradeNo('<xml><out_trade_no>A&amp;B&#45;&#x43;</out_trade_no></xml>'), { outcome: 'found', text: 'A&B-C' }, 'predefined and character references')
  t.same(outTradeNo('<xml><out_trade_no>a<!-- c --><![CDATA[b]]><i>c</i></out_trade_no></xml>'), { outcome: 'found', text: 'abc' }, 'its whole text')
  t.same(outTradeNo('<xml><out_trade_no/></xml>'), { outcome: 'found', text: '' }, 'empty')
  t.same(outTradeNo('<xml><other>1</other></xml>'), { outcome: 'absent' })
  t.same(outTradeNo(''), { outcome: 'absent' })
  t.same(outTradeNo('<xml><out_trade_no>A-1</out_trade_no><broken'), { outcome: 'found', text: 'A-1' }, 'the scan stops at the match: what follows is never read')
  t.same(outTradeNo(`<xml><out_trade_no>${'x'.repeat(2000)}</out_trade_no></xml>`), { outcome: 'too-long' })
})

t.test('DTDs, entities and broken documents are refused, never expanded', async (t) => {
  t.same(outTradeNo(LAUGHS), { outcome: 'doctype' }, 'billion laughs: refused at the DOCTYPE')
  t.same(outTradeNo(XXE), { outcome: 'doctype' }, 'external entity: refused at the DOCTYPE')
  t.same(outTradeNo('<!DOCTYPE xml><xml><out_trade_no>A</out_trade_no></xml>'), { outcome: 'doctype' }, 'any DOCTYPE at all')
  t.same(outTradeNo('<xml><out_trade_no>A</out_trade_no><!DOCTYPE xml></xml>'), { outcome: 'doctype' }, 'anywhere in the body')
  t.same(outTradeNo('<!DOCTYPE xml [' + '<!ENTITY e "x">'.repeat(4000) + ']><xml/>'), { outcome: 'doctype' }, 'a large internal subset')
  t.same(outTradeNo('<xml><out_trade_no>&xxe;</out_trade_no></xml>'), { outcome: 'malformed' }, 'an undefined entity')
  t.same(outTradeNo('<xml><a></b><out_trade_no>A</out_trade_no></xml>'), { outcome: 'malformed' }, 'a mismatched tag before the match')
  t.same(outTradeNo('out_trade_no=F-1&x=2'), { outcome: 'malformed' }, 'not XML')
  t.same(outTradeNo('{"out_trade_no":"J-1"}'), { outcome: 'malformed' })
  // deep nesting: the tag stack is an array, so depth costs no call stack; and the scan gives up
  // after MAX_XML_ELEMENTS elements, nested or not
  const deep = (n: number) => '<a>'.repeat(n) + '<out_trade_no>D-1</out_trade_no>' + '</a>'.repeat(n)
  t.same(outTradeNo(deep(MAX_XML_ELEMENTS)), { outcome: 'found', text: 'D-1' }, `${MAX_XML_ELEMENTS} levels deep`)
  t.same(outTradeNo(deep(MAX_XML_ELEMENTS + 1)), { outcome: 'too-many-elements' })
  t.same(outTradeNo(deep(100_000)), { outcome: 'too-many-elements' }, '100,000 levels')
  t.same(outTradeNo('<a>'.repeat(100_000) + '<out_trade_no>'), { outcome: 'too-many-elements' }, 'unclosed nesting')
  t.same(outTradeNo('<a>'.repeat(100_000)), { outcome: 'absent' }, 'a body that never names the element is not parsed')
  t.same(outTradeNo('<xml>' + '<a>x</a>'.repeat(20_000) + '<out_trade_no>F</out_trade_no></xml>'), { outcome: 'too-many-elements' }, 'flat')
  t.same(outTradeNo('<xml>' + '<a>x</a>'.repeat(500) + '<out_trade_no>F</out_trade_no></xml>'), { outcome: 'found', text: 'F' })
})

t.test('xml content types', async (t) => {
  for (const ct of ['text/xml', 'application/xml; charset=utf-8', 'application/soap+xml', 'TEXT/XML'.toLowerCase()]) t.ok(isXmlType(ct), ct)
  for (const ct of ['application/json', 'application/x-www-form-urlencoded', 'text/plain', 'text/html']) t.notOk(isXmlType(ct), ct)
})

t.test('xml: lookups and learn sources', async (t) => {
  const lookup = compileLookup(['xml:out_trade_no', 'form:out_trade_no'])
  t.equal(lookup.needsBody, true)
  const req = { method: 'POST', url: '/api/payments/notify', headers: {} }
  t.equal(lookup.read(req, '/api/payments/notify', b(WECHAT), 'text/xml'), '1217752501201407033233368018')
  t.equal(lookup.read(req, '/api/payments/notify', b(WECHAT), undefined), '1217752501201407033233368018', 'no content type: tried')
  t.equal(lookup.read(req, '/api/payments/notify', b(WECHAT), 'application/json'), undefined, 'a JSON content type is not read as XML')
  t.equal(lookup.read(req, '/api/payments/notify', b('out_trade_no=F-1'), 'application/x-www-form-urlencoded'), 'F-1', 'a form falls to form:')
  t.equal(lookup.read(req, '/api/payments/notify', b(LAUGHS), 'text/xml'), undefined)
  t.equal(lookup.read(req, '/api/payments/notify', b('<xml><out_trade_no>  Z-9  </out_trade_no></xml>'), 'text/xml'), 'Z-9', 'trimmed')
  t.equal(lookup.read(req, '/api/payments/notify', b('<xml><out_trade_no> </out_trade_no></xml>'), 'text/xml'), undefined, 'blank is no id')
  const learn = compileLearn(['json:$.orderId', 'xml:orderId'])
  t.equal(learn({ 'content-type': 'application/xml' }, b('<order><orderId>LG-7</orderId></order>')), 'LG-7')
  t.equal(learn({ 'content-type': ['text/xml'] }, b('<order><orderId>LG-8</orderId></order>')), 'LG-8')
  t.equal(learn({ 'content-type': 'text/plain' }, b('<order><orderId>LG-7</orderId></order>')), undefined, 'a text answer is not read as XML')
  t.equal(learn({}, b('{"orderId":"NW-1"}')), 'NW-1', 'JSON first, as listed')
  t.equal(learn({}, undefined), undefined)
})

t.test('json: paths through arrays, compiled at load', async (t) => {
  t.same(compileJsonPath('json:$.notificationItems[0].NotificationRequestItem.merchantReference'), ['notificationItems', 0, 'NotificationRequestItem', 'merchantReference'])
  t.same(compileJsonPath('json:$[2].id'), [2, 'id'])
  t.same(compileJsonPath('json:$.a[10][3]'), ['a', 10, 3])
  for (const bad of ['json:$', 'json:$.', 'json:$.a[', 'json:$.a[-1]', 'json:$.a[01]', 'json:$.a b', 'json:a.b', 'json:$..a']) t.throws(() => compileJsonPath(bad), TypeError, bad)
  const lookup = compileLookup(['json:$.resource.purchase_units[0].reference_id', 'json:$.notificationItems[0].NotificationRequestItem.merchantReference', 'json:$.data.object.metadata.order_id'])
  const req = { method: 'POST', url: '/hooks', headers: {} }
  const read = (o: unknown) => lookup.read(req, '/hooks', b(JSON.stringify(o)), 'application/json')
  t.equal(read({ resource: { purchase_units: [{ reference_id: 'PP-1' }, { reference_id: 'PP-2' }] } }), 'PP-1')
  t.equal(read({ notificationItems: [{ NotificationRequestItem: { merchantReference: 'AD-1' } }] }), 'AD-1')
  t.equal(read({ data: { object: { metadata: { order_id: 'ST-1' } } } }), 'ST-1')
  t.equal(read({ resource: { purchase_units: [] } }), undefined, 'index past the end')
  t.equal(read({ resource: { purchase_units: { 0: { reference_id: 'obj' } } } }), undefined, 'an index reads arrays only')
  t.equal(read({ notificationItems: { NotificationRequestItem: {} } }), undefined)
  const proto = compileLookup(['json:$.constructor', 'json:$.a.__proto__'])
  t.equal(proto.read(req, '/hooks', b('{"a":{}}'), 'application/json'), undefined, 'inherited keys name nothing')
  const learn = compileLearn(['json:$.data[0].id', 'json:$[0].orderId'])
  t.equal(learn({}, b('{"data":[{"id":"NW-3"}]}')), 'NW-3')
  t.equal(learn({}, b('[{"orderId":42}]')), '42')
})

t.test('the config accepts xml: and indexed json: sources and refuses malformed ones, naming the field', async (t) => {
  const yaml = (lookup: string, learn = 'json:$.orderId') => `
backends:
  legacy: { url: "http://127.0.0.1:4001" }
  new: { url: "http://127.0.0.1:4002" }
rollouts:
  checkout:
    percent: 5
    cohortKey: [header:x-user-id]
    affinity: { learn: [${learn}], lookup: [${lookup}], ttl: 30d }
routes:
  - { name: orders, match: { prefix: /api/orders }, rollout: checkout }
`
  const c = parseConfig(yaml('xml:out_trade_no, "json:$.resource.purchase_units[0].reference_id"', 'xml:orderId, "json:$.data[0].id"'), 'p.yaml', {})
  t.same(c.rollouts.checkout?.affinity?.lookup, ['xml:out_trade_no', 'json:$.resource.purchase_units[0].reference_id'])
  t.same(c.rollouts.checkout?.affinity?.learn, ['xml:orderId', 'json:$.data[0].id'])
  const bad: [string, string, string][] = [
    ['"xml:"', 'json:$.orderId', 'lookup[0]'],
    ['xml:1abc', 'json:$.orderId', 'lookup[0]'],
    ['xml:wx:out_trade_no', 'json:$.orderId', 'lookup[0]'],
    ['"json:$.a[x]"', 'json:$.orderId', 'lookup[0]'],
    ['"json:$.a[-1]"', 'json:$.orderId', 'lookup[0]'],
    ['form:a', '"json:$.a["', 'learn[0]']
  ]
  for (const [lookup, learn, field] of bad) {
    t.throws(() => parseConfig(yaml(lookup, learn), 'p.yaml', {}), { message: new RegExp(`p\\.yaml:\\d+:\\d+: rollouts\\.checkout\\.affinity\\.${field.replace(/[[\]]/g, '\\$&')}: must match pattern`) }, `${lookup} / ${learn}`)
  }
})
