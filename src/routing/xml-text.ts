// `xml:NAME` order ids: the text of the first element with that local name, from a streaming,
// non-validating scan (saxes) that stops at the end of that element. A body with a DOCTYPE anywhere
// is refused before it is parsed, and saxes knows only the five predefined entities and character
// references, so nothing is ever expanded or fetched (no XXE, no billion laughs); an undefined
// entity or any other well-formedness error before the match refuses the body too. The caller
// bounds the body (affinity.maxBodyBytes), this file the work: a body that never spells the name
// is not parsed, and the scan gives up after MAX_XML_ELEMENTS elements (the tag stack is an
// array, not recursion: depth costs no call stack)
import { SaxesParser, type SaxesTagPlain } from 'saxes'

/** what a scan found: the element's text, or why there is none */
export type XmlScan =
  | { readonly outcome: 'found', readonly text: string }
  | { readonly outcome: 'absent' | 'doctype' | 'malformed' | 'too-long' | 'too-many-elements', readonly text?: undefined }

/**
 * elements read before giving up: a provider's notification has a few dozen, and saxes costs about
 * 0.1-0.2 µs a tag, so 64 KiB of tags would cost ~2 ms of CPU where this bound keeps it near 0.2 ms
 */
export const MAX_XML_ELEMENTS = 1024

const ABSENT: XmlScan = { outcome: 'absent' }
const DOCTYPE: XmlScan = { outcome: 'doctype' }
const MALFORMED: XmlScan = { outcome: 'malformed' }
const TOO_LONG: XmlScan = { outcome: 'too-long' }
const TOO_MANY: XmlScan = { outcome: 'too-many-elements' }

// a DOCTYPE anywhere refuses the body before saxes reads it (saxes would gather the whole DTD
// first: ~1 ms of CPU for a 64 KiB internal subset, against ~1 µs for this native search)
const DOCTYPE_MARK = Buffer.from('<!DOCTYPE')

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
  const nameBytes = Buffer.from(localName)
  return (input) => {
    const body = typeof input === 'string' ? Buffer.from(input) : input
    if (body.indexOf(DOCTYPE_MARK) !== -1) return DOCTYPE
    // a body that never spells the name cannot hold the element: no parse
    if (body.indexOf(nameBytes) === -1) return ABSENT
    let depth = 0
    let elements = 0
    let at = -1 // depth of the matched element, -1 before it opens
    let text = ''
    let result: XmlScan = ABSENT
    const parser = new SaxesParser({ xmlns: false, position: false })
    const collect = (t: string) => {
      text += t
      if (text.length > maxTextLength) { result = TOO_LONG; throw STOP }
    }
    parser.on('doctype', () => { result = DOCTYPE; throw STOP })
    parser.on('error', () => { result = MALFORMED; throw STOP })
    parser.on('opentag', (tag: SaxesTagPlain) => {
      depth++
      if (at !== -1) return
      if (matches(tag.name)) {
        at = depth
        // saxes gathers text only while a handler is set: none before the match
        parser.on('text', collect)
        parser.on('cdata', collect)
      } else if (++elements > MAX_XML_ELEMENTS) {
        result = TOO_MANY
        throw STOP
      }
    })
    parser.on('closetag', () => {
      if (depth === at) { result = { outcome: 'found', text }; throw STOP }
      depth--
    })
    try {
      parser.write(body.toString('utf8'))
    } catch (err) {
      if (err !== STOP) return MALFORMED
    }
    return result
  }
}
