// request targets other than the origin form (RFC 9112 §3.2): the absolute form is accepted when
// its authority is the Host the client named (the same request, written another way); any other
// authority, a userinfo, another scheme, or the asterisk form is refused: the gateway is not a
// forward proxy and never hands a foreign authority to a backend
const ABSOLUTE = /^(https?):\/\/([^/?#]*)([^#]*)$/i
const DEFAULT_PORT: Record<string, string> = { http: ':80', https: ':443' }

function normalize (authority: string, scheme: string): string {
  const a = authority.toLowerCase()
  const port = DEFAULT_PORT[scheme]
  return port !== undefined && a.endsWith(port) ? a.slice(0, -port.length) : a
}

/** the origin form of an absolute-form target whose authority is `host`; undefined: refuse */
export function originForm (target: string, host: string | undefined): string | undefined {
  const m = ABSOLUTE.exec(target)
  if (m === null || host === undefined) return undefined
  const scheme = (m[1] as string).toLowerCase()
  const authority = m[2] as string
  if (authority === '' || authority.includes('@')) return undefined
  if (normalize(authority, scheme) !== normalize(host, scheme)) return undefined
  const rest = m[3] as string
  return rest === '' ? '/' : rest.charCodeAt(0) === 63 /* ? */ ? '/' + rest : rest
}
