// the console's files go out compressed when the client accepts it: brotli first, then gzip, from
// bytes compressed at `npm run build` (dist/console-assets/); as is otherwise. Plain node:http,
// which sends what it is told and decodes nothing, so the test sees the wire
import t from 'tap'
import http from 'node:http'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { brotliDecompressSync, gunzipSync } from 'node:zlib'
import { startBackend } from '../helpers/backend.js'
import { startGatewayFromYaml, basicYaml } from '../helpers/gateway.js'
import { TOKENS_YAML } from '../helpers/admin.js'
import { consoleFiles, negotiate, precompressedName, PRECOMPRESSED_DIR } from '../../src/console/index.js'

interface Wire { status: number, headers: http.IncomingHttpHeaders, body: Buffer }

function get (base: string, path: string, headers: Record<string, string> = {}): Promise<Wire> {
  return new Promise((resolve, reject) => {
    http.get(`${base}${path}`, { headers }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }))
      res.on('error', reject)
    }).on('error', reject)
  })
}

t.test('accept-encoding: the best coding the client takes (RFC 9110 §12.5.3)', async (t) => {
  const both = { br: 1, gzip: 1 }
  t.equal(negotiate('gzip, deflate, br', both), 'br')
  t.equal(negotiate('gzip', both), 'gzip')
  t.equal(negotiate('br;q=0, gzip;q=0.5', both), 'gzip', 'q=0 refuses a coding')
  t.equal(negotiate('*', both), 'br')
  t.equal(negotiate('*;q=0', both), undefined)
  t.equal(negotiate('identity', both), undefined)
  t.equal(negotiate(undefined, both), undefined)
  t.equal(negotiate('br', { gzip: 1 }), undefined, 'a coding the file does not have is not sent')
})

t.test('the page and its assets, compressed on the wire and whole once decoded', async (t) => {
  const legacy = await startBackend('legacy', t)
  const fresh = await startBackend('new', t)
  const gw = await startGatewayFromYaml(basicYaml(legacy.url, fresh.url, { top: TOKENS_YAML }), t)
  const files = consoleFiles()
  t.ok(files.length >= 7)
  let raw = 0
  let sent = 0
  for (const [url, file] of files) {
    const want = readFileSync(file)
    const plain = await get(gw.adminUrl, url)
    t.equal(plain.status, 200, url)
    t.equal(plain.headers['content-encoding'], undefined, `${url}: as is without accept-encoding`)
    t.same(plain.body, want)
    t.equal(plain.headers.vary, 'accept-encoding', `${url}: caches keep the codings apart`)

    const br = await get(gw.adminUrl, url, { 'accept-encoding': 'gzip, deflate, br' })
    const gz = await get(gw.adminUrl, url, { 'accept-encoding': 'gzip' })
    for (const [res, coding, decode] of [[br, 'br', brotliDecompressSync], [gz, 'gzip', gunzipSync]] as const) {
      if (res.headers['content-encoding'] === undefined && url === '/console/icon.svg') {
        // a few hundred bytes may not shrink: then the file goes as is, whatever the client accepts
        t.same(res.body, want, `${url}: as is, ${coding} would not be smaller`)
        continue
      }
      t.equal(res.headers['content-encoding'], coding, url)
      t.same(decode(res.body), want, `${url}: ${coding} decodes to the file`)
      t.equal(Number(res.headers['content-length']), res.body.length)
      t.ok(res.body.length < want.length, `${url}: ${want.length} → ${res.body.length} bytes ${coding}`)
    }
    t.not(br.headers.etag, plain.headers.etag, 'each coding has its own etag')
    const again = await get(gw.adminUrl, url, { 'accept-encoding': 'br', 'if-none-match': String(br.headers.etag) })
    t.equal(again.status, 304, `${url}: revalidates per coding`)
    const other = await get(gw.adminUrl, url, { 'if-none-match': String(br.headers.etag) })
    t.equal(other.status, 200, `${url}: the br etag does not stand for the plain file`)
    // the bytes are the ones `npm run build` stored, not compressed again
    const stored = join(PRECOMPRESSED_DIR, precompressedName(want, 'br'))
    t.ok(existsSync(stored), `${stored} exists (npm run build makes it)`)
    if (existsSync(stored)) t.same(br.body, readFileSync(stored))
    raw += want.length
    sent += br.body.length
  }
  t.ok(sent < raw / 2, `the page's files: ${raw} bytes as is, ${sent} with brotli`)
  t.equal((await get(gw.adminUrl, '/console/app.js', { 'accept-encoding': 'br' })).headers['content-security-policy'], "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
})
