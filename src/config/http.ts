// HTTP facts in one place: the methods dualtrack knows, what the data plane proxies, what is safe to
// retry or copy (RFC 9110 §9.2.1), what writes; and how a backend URL splits into origin and path
export const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const
export type HttpMethod = typeof HTTP_METHODS[number]

/** reads: retried on a connect failure, copied by shadow routes */
export const SAFE_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS'])
/** writes: never retried after a byte was sent, never copied unless a route opts in to dry-run */
export const WRITE_METHODS: ReadonlySet<string> = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])
/** metric labels: a method outside this set is counted as OTHER */
export const KNOWN_METHODS: ReadonlySet<string> = new Set(HTTP_METHODS)

/** a backend URL as the pools need it: the origin, and the path prefix ("" for none) */
export function backendTarget (url: string): { readonly origin: string, readonly basePath: string } {
  const u = new URL(url)
  return { origin: u.origin, basePath: u.pathname === '/' ? '' : u.pathname.replace(/\/$/, '') }
}
