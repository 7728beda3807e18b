// bearer tokens with roles; compared in constant time over sha256 digests so neither the token's
// length nor its first differing byte shows in the timing
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'

export type Role = 'operator' | 'viewer'
export interface Principal { readonly name: string, readonly role: Role }
export interface TokenSpec { readonly name: string, readonly token: string, readonly role: Role }

export interface Auth {
  /** the principal of an Authorization header, or undefined */
  check (authorization: string | undefined): Principal | undefined
  /** set when no token was configured: a random operator token made at start */
  readonly generated: string | undefined
}

const digest = (s: string) => createHash('sha256').update(s).digest()

export function createAuth (tokens: readonly TokenSpec[]): Auth {
  let generated: string | undefined
  let list = tokens
  if (list.length === 0) {
    generated = randomBytes(24).toString('base64url')
    list = [{ name: 'generated-operator', token: generated, role: 'operator' }]
  }
  const digests = list.map((t) => ({ d: digest(t.token), p: { name: t.name, role: t.role } as Principal }))
  return {
    generated,
    check (authorization) {
      if (authorization === undefined || !/^bearer /i.test(authorization)) return undefined
      const d = digest(authorization.slice(7).trim())
      let found: Principal | undefined
      // every digest is compared: no early exit that would time which token matched
      for (const e of digests) if (timingSafeEqual(e.d, d) && found === undefined) found = e.p
      return found
    }
  }
}
