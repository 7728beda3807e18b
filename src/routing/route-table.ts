// the route table, compiled once per config: longest prefix first, whole path segments only
// (/api/orders matches /api/orders and /api/orders/7, never /api/ordersX), optional methods
export interface RouteSpec {
  readonly name: string
  readonly match: { readonly prefix: string, readonly methods?: readonly string[] | undefined }
}

export interface RouteTable<R extends RouteSpec> {
  /** the route for this method and path (query excluded), or undefined */
  match(method: string, path: string): R | undefined
}

export function compileRouteTable<R extends RouteSpec> (routes: readonly R[]): RouteTable<R> {
  const entries = routes
    .map((route, order) => {
      const raw = route.match.prefix
      // "/api/orders/" and "/api/orders" are the same prefix; "/" matches everything
      const prefix = raw.length > 1 && raw.endsWith('/') ? raw.slice(0, -1) : raw
      return { route, prefix, methods: route.match.methods ? new Set(route.match.methods) : undefined, order }
    })
    // longest prefix wins; among equals, a route with methods before a catch-all one, then file order
    .sort((a, b) => b.prefix.length - a.prefix.length || Number(b.methods !== undefined) - Number(a.methods !== undefined) || a.order - b.order)
  return {
    match (method, path) {
      for (let i = 0; i < entries.length; i++) {
        const e = entries[i] as (typeof entries)[number]
        const p = e.prefix
        if (!path.startsWith(p)) continue
        if (path.length !== p.length && p !== '/' && path.charCodeAt(p.length) !== 47 /* / */) continue
        if (e.methods !== undefined && !e.methods.has(method)) continue
        return e.route
      }
      return undefined
    }
  }
}

/** the path of a request URL without its query string */
export function pathOf (url: string): string {
  const q = url.indexOf('?')
  return q === -1 ? url : url.slice(0, q)
}
