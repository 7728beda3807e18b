import t from 'tap'
import { compileRedactor, luhn, redactText } from '../../src/shadow/redact.js'

t.test('personal data anywhere in a nested body never reaches the output', async (t) => {
  const redact = compileRedactor([])
  const body = {
    order: {
      payment: { card: '4111 1111 1111 1111', note: 'paid with 4111-1111-1111-1111 ok' },
      buyer: {
        phone: '13812345678',
        contacts: ['call +86 138 1234 5678 or +1-415-555-0100', 'tel:139-1234-5678'],
        idNumber: '11010519491231002X',
        ssn: 'SSN 078-05-1120',
        email: 'li.lei+orders@example.com.cn'
      }
    },
    raw: 4111111111111111,
    mobile: 13812345678
  }
  const out = redact(body)
  const text = JSON.stringify(out)
  for (const secret of ['4111 1111 1111 1111', '4111-1111-1111-1111', '4111111111111111', '13812345678',
    '138 1234 5678', '415-555-0100', '139-1234-5678', '11010519491231002X', '078-05-1120', 'li.lei', 'example.com']) {
    t.notOk(text.includes(secret), `${secret} is redacted`)
  }
  t.same(out, {
    order: {
      payment: { card: '************1111', note: 'paid with ************1111 ok' },
      buyer: {
        phone: '[phone]',
        contacts: ['call [phone] or [phone]', 'tel:[phone]'],
        idNumber: '[id]',
        ssn: 'SSN [id]',
        email: '[email]'
      }
    },
    raw: '************1111',
    mobile: '[phone]'
  })
  // a deep copy: the input is untouched
  t.equal(body.order.payment.card, '4111 1111 1111 1111')
})

t.test('configured paths are redacted whole, with [*] wildcards', async (t) => {
  const redact = compileRedactor(['$.buyer.address', '$.items[*].note'])
  const out = redact({
    buyer: { name: 'Li', address: { city: 'Hangzhou', street: 'Wensan Rd 1' } },
    items: [{ sku: 'x', note: 'leave at door' }, { sku: 'y' }],
    note: 'kept'
  })
  t.same(out, {
    buyer: { name: 'Li', address: '[redacted]' },
    items: [{ sku: 'x', note: '[redacted]' }, { sku: 'y' }],
    note: 'kept'
  })
  t.equal(compileRedactor(['$'])({ a: 1 }), '[redacted]')
})

t.test('numbers that fail Luhn and ordinary values are kept', async (t) => {
  t.equal(luhn('1234567812345678'), false)
  t.equal(luhn('4111111111111111'), true)
  const redact = compileRedactor([])
  const value = {
    orderId: '1234567812345678',
    orderNo: 1234567812345678,
    total: 12.5,
    count: 3,
    ok: true,
    none: null,
    sku: 'ABC-123',
    at: '2026-11-25T03:00:00.000Z'
  }
  t.same(redact(value), value)
})

t.test('redactText masks raw strings and keeps a card followed by other digits masked', async (t) => {
  t.equal(redactText('no digits here'), 'no digits here')
  t.equal(redactText('card=4111111111111111 cvv 123'), 'card=************1111 cvv 123')
  t.equal(redactText('4111 1111 1111 1111 123'), '************1111 123')
  t.equal(redactText('5555-5555-5555-4444-99'), '************4444-99')
  t.equal(redactText('order 1234 5678 1234 5678 done'), 'order 1234 5678 1234 5678 done')
  t.equal(redactText('mail a@b.io, id 11010519491231002x'), 'mail [email], id [id]')
  t.equal(redactText('{"to":"13912345678"}'), '{"to":"[phone]"}')
  // too long to be a phone number
  t.equal(redactText('138123456789012'), '138123456789012')
})

t.test('a __proto__ key stays data', async (t) => {
  const redact = compileRedactor(['$.__proto__.secret'])
  const out = redact(JSON.parse('{"__proto__":{"secret":"s","x":1}}')) as Record<string, unknown>
  t.equal(Object.getPrototypeOf(out), Object.prototype)
  t.same(Object.getOwnPropertyDescriptor(out, '__proto__')?.value, { secret: '[redacted]', x: 1 })
})
