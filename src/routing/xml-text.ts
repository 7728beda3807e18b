// `xml:NAME` order ids: the text of the first element with that local name, from a streaming,
// non-validating scan (saxes) that stops at the end of that element. A body with a DOCTYPE is
// refused before anything in it is read, and saxes knows only the five predefined entities and
// character references, so nothing is ever expanded or fetched (no XXE, no billion laughs); an
// undefined entity or any other well-formedness error before the match refuses the body too.
// The body is bounded by the caller (affinity.maxBodyBytes); the tag stack is an array, not
// recursion, so deep nesting costs memory linear in the (bounded) body and no stack
import { SaxesParser, type SaxesTagPlain } from 'saxes'

/** what a scan found: the element's text, or why there is none */
export type XmlScan =
  | { readonly outcome: 'found', readonly text: string }
  | { readonly outcome: 'absent' | 'doctype' | 'malformed' | 'too-long', readonly text?: undefined }

const ABSENT: XmlScan = { outcome: 'absent' }
const DOCTYPE: XmlScan = { outcome: 'doctype' }
const MALFORMED: XmlScan = { outcome: 'malformed' }
const TOO_LONG: XmlScan = { outcome: 'too-long' }

// thrown through saxes to stop its write() at once (saxes has no abort); not an Error: no stack to build
const STOP = Symbol('stop')

/** is this content type XML (text/xml, application/xml, anything +xml)? */
export function isXmlType (ct: string): boolean {
  return ct.includes('/xml') || ct.includes('+xml')
}

/**
 * compiles a scanner for one local name (`out_trade_no` also matches `<wx:out_trade_no>`);
 * `maxTextLength` bounds the text collected (longer is no order id)
 */
export function compileXmlText (localName: string, maxTextLength: number): (body: Buffer | string) => XmlScan {
  const suffix = `:${localName}`
  const matches = (name: string) => name === localName || name.endsWith(suffix)
  return (body) => {
    let depth = 0
    let at = -1 // depth of the matched element, -1 before it opens
    let text = ''
    let result: XmlScan = ABSENT
    const parser = new SaxesParser({ xmlns: false, position: false })
    parser.on('doctype', () => { result = DOCTYPE; throw STOP })
    parser.on('error', () => { result = MALFORMED; throw STOP })
    parser.on('opentag', (tag: SaxesTagPlain) => {
      depth++
      if (at === -1 && matches(tag.name)) at = depth
    })
    const collect = (t: string) => {
      if (at === -1) return
      text += t
      if (text.length > maxTextLength) { result = TOO_LONG; throw STOP }
    }
    parser.on('text', collect)
    parser.on('cdata', collect)
    parser.on('closetag', () => {
      if (depth === at) { result = { outcome: 'found', text }; throw STOP }
      depth--
    })
    try {
      parser.write(typeof body === 'string' ? body : body.toString('utf8'))
    } catch (err) {
      if (err !== STOP) return MALFORMED
    }
    return result
  }
}
