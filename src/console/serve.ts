// the console (DESIGN.md §10): one page and its files on the admin listener, read into memory once
// at start, plus the two reads it needs beside the admin API (/admin/whoami, /admin/stats)
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { FastifyInstance, FastifyReply } from 'fastify'
import type { Auth } from '../admin/index.js'
import type { Stats } from '../stats/index.js'
import { DUALTRACK_ERR_BAD_REQUEST, DUALTRACK_ERR_UNAUTHORIZED } from '../errors.js'

/** the page's own files: console/ at the package root (src/console and dist/console are two deep) */
export const CONSOLE_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'console')

// no CDN, no inline script or style: everything comes from this origin
export const CONSOLE_CSP = "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml'
}

interface Asset { body: Buffer, type: string, etag: string }

export interface ConsoleDeps {
  auth (): Auth
  readonly stats: Stats
}

/** url path -> file; the libraries come from node_modules, so no operator-side build step */
function assets (): Map<string, Asset> {
  const require = createRequire(import.meta.url)
  // htm's standalone build carries Preact and its hooks in one 13 KB module
  const htm = join(dirname(require.resolve('htm')), '..', 'preact', 'standalone.module.js')
  const uplotDir = join(dirname(require.resolve('uplot')), '..', 'dist')
  const files: [string, string][] = [
    ['/', join(CONSOLE_DIR, 'index.html')],
    ['/console/app.js', join(CONSOLE_DIR, 'app.js')],
    ['/console/style.css', join(CONSOLE_DIR, 'style.css')],
    ['/console/icon.svg', join(CONSOLE_DIR, 'icon.svg')],
    ['/console/vendor/preact-htm.js', htm],
    ['/console/vendor/uplot.js', join(uplotDir, 'uPlot.iife.min.js')],
    ['/console/vendor/uplot.css', join(uplotDir, 'uPlot.min.css')]
  ]
  const out = new Map<string, Asset>()
  for (const [url, file] of files) {
    const body = readFileSync(file)
    const ext = /\.[a-z]+$/.exec(url === '/' ? '.html' : url)?.[0] ?? '.html'
    out.set(url, { body, type: TYPES[ext] ?? 'application/octet-stream', etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 16)}"` })
  }
  return out
}

function send (reply: FastifyReply, a: Asset, ifNoneMatch: string | undefined) {
  reply
    .header('content-security-policy', CONSOLE_CSP)
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer')
    .header('x-frame-options', 'DENY')
    .header('cache-control', 'no-cache')
    .header('etag', a.etag)
  if (ifNoneMatch === a.etag) return reply.code(304).send()
  return reply.type(a.type).send(a.body)
}

export function registerConsole (admin: FastifyInstance, deps: ConsoleDeps): void {
  const files = assets()
  for (const [url, a] of files) {
    admin.get(url, async (req, reply) => send(reply, a, req.headers['if-none-match']))
  }
  const unauthorized = (reply: FastifyReply) => {
    const e = new DUALTRACK_ERR_UNAUTHORIZED()
    return reply.code(401).header('www-authenticate', 'Bearer').send({ error: e.code, message: e.message })
  }
  // the console greys out what a viewer cannot do: it asks who the token is
  admin.get('/admin/whoami', async (req, reply) => {
    const p = deps.auth().check(req.headers.authorization)
    if (p === undefined) return unauthorized(reply)
    return { name: p.name, role: p.role }
  })
  admin.get<{ Querystring: { window?: string } }>('/admin/stats', async (req, reply) => {
    if (deps.auth().check(req.headers.authorization) === undefined) return unauthorized(reply)
    const view = await deps.stats.fleetView(req.query.window)
    if (view === undefined) {
      const e = new DUALTRACK_ERR_BAD_REQUEST(`query.window: ${req.query.window} is not a window from 5s to ${deps.stats.ring.capacity * 5 / 60}m (for example 15m)`)
      return reply.code(400).send({ error: e.code, message: e.message, field: 'window' })
    }
    return view
  })
}
