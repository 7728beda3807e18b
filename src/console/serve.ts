// the console (DESIGN.md §10): one page and its files on the admin listener, read into memory once
// at start, plus the two reads it needs beside the admin API (/admin/whoami, /admin/stats)
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { brotliCompressSync, gzipSync, constants as zlib } from 'node:zlib'
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

/** the page's files compressed at `npm run build` (scripts/precompress-console.js), named by their source's hash */
export const PRECOMPRESSED_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'console-assets')

export type Coding = 'br' | 'gzip'
interface Body { body: Buffer, etag: string }
interface Asset extends Body { type: string, coded: Partial<Record<Coding, Body>> }

/** a file's compressed forms, at the highest levels: done once, at build (or at load when not built) */
export function compressAsset (body: Buffer): Record<Coding, Buffer> {
  return {
    br: brotliCompressSync(body, { params: { [zlib.BROTLI_PARAM_QUALITY]: zlib.BROTLI_MAX_QUALITY, [zlib.BROTLI_PARAM_SIZE_HINT]: body.length } }),
    gzip: gzipSync(body, { level: 9 })
  }
}

/** the name a file's compressed form has in PRECOMPRESSED_DIR: its content's hash, so a stale one is never used */
export const sourceHash = (body: Buffer): string => createHash('sha256').update(body).digest('base64url').slice(0, 16)
export const precompressedName = (body: Buffer, coding: Coding): string => `${sourceHash(body)}.${coding === 'br' ? 'br' : 'gz'}`

export interface ConsoleDeps {
  auth (): Auth
  readonly stats: Stats
}

/** url path -> file; the libraries come from node_modules, so no operator-side build step */
export function consoleFiles (): [string, string][] {
  const require = createRequire(import.meta.url)
  // htm's standalone build carries Preact and its hooks in one 13 KB module
  const htm = join(dirname(require.resolve('htm')), '..', 'preact', 'standalone.module.js')
  const uplotDir = join(dirname(require.resolve('uplot')), '..', 'dist')
  const files: [string, string][] = [
    ['/', join(CONSOLE_DIR, 'index.html')],
    ['/console/app.js', join(CONSOLE_DIR, 'app.js')],
    ['/console/undo.js', join(CONSOLE_DIR, 'undo.js')],
    ['/console/style.css', join(CONSOLE_DIR, 'style.css')],
    ['/console/icon.svg', join(CONSOLE_DIR, 'icon.svg')],
    ['/console/vendor/preact-htm.js', htm],
    ['/console/vendor/uplot.js', join(uplotDir, 'uPlot.iife.min.js')],
    ['/console/vendor/uplot.css', join(uplotDir, 'uPlot.min.css')]
  ]
  return files
}

function assets (): Map<string, Asset> {
  const out = new Map<string, Asset>()
  for (const [url, file] of consoleFiles()) {
    const body = readFileSync(file)
    const ext = /\.[a-z]+$/.exec(url === '/' ? '.html' : url)?.[0] ?? '.html'
    const hash = sourceHash(body)
    // precompressed at build: no compression CPU per request, nor at start; a checkout not built
    // (tests from src/) compresses once here instead
    let coded: Partial<Record<Coding, Buffer>>
    try {
      coded = { br: readFileSync(join(PRECOMPRESSED_DIR, precompressedName(body, 'br'))), gzip: readFileSync(join(PRECOMPRESSED_DIR, precompressedName(body, 'gzip'))) }
    } catch {
      coded = compressAsset(body)
    }
    const a: Asset = { body, type: TYPES[ext] ?? 'application/octet-stream', etag: `"${hash}"`, coded: {} }
    for (const c of ['br', 'gzip'] as const) {
      const z = coded[c]
      // a tiny file may not shrink: then it is only sent as is
      if (z !== undefined && z.length < body.length) a.coded[c] = { body: z, etag: `"${hash}-${c}"` }
    }
    out.set(url, a)
  }
  return out
}

/** the best coding the client accepts (br, then gzip), per RFC 9110 §12.5.3; undefined: as is */
export function negotiate (header: string | undefined, have: Partial<Record<Coding, unknown>>): Coding | undefined {
  if (header === undefined || header === '') return undefined
  const q: Record<string, number> = {}
  for (const part of header.toLowerCase().split(',')) {
    const [name, ...params] = part.trim().split(';')
    const qp = params.map((p) => p.trim()).find((p) => p.startsWith('q='))
    const v = qp === undefined ? 1 : Number(qp.slice(2))
    if (name) q[name] = Number.isFinite(v) ? v : 0
  }
  const ok = (c: string) => (q[c] ?? q['*'] ?? 0) > 0
  if (have.br !== undefined && ok('br')) return 'br'
  if (have.gzip !== undefined && (ok('gzip') || ok('x-gzip'))) return 'gzip'
  return undefined
}

function send (reply: FastifyReply, a: Asset, ifNoneMatch: string | undefined, acceptEncoding: string | undefined) {
  const coding = negotiate(acceptEncoding, a.coded)
  const rep = coding === undefined ? a : a.coded[coding] as Body
  reply
    .header('content-security-policy', CONSOLE_CSP)
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer')
    .header('x-frame-options', 'DENY')
    .header('cache-control', 'no-cache')
    .header('vary', 'accept-encoding')
    .header('etag', rep.etag)
  if (ifNoneMatch === rep.etag) return reply.code(304).send()
  if (coding !== undefined) reply.header('content-encoding', coding)
  return reply.type(a.type).send(rep.body)
}

export function registerConsole (admin: FastifyInstance, deps: ConsoleDeps): void {
  const files = assets()
  for (const [url, a] of files) {
    admin.get(url, async (req, reply) => send(reply, a, req.headers['if-none-match'], req.headers['accept-encoding']))
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
