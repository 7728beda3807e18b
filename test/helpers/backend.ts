// real HTTP backends on port 0 for the tests: each answers who it is, echoes what it got,
// and can be told to be slow, to reset, or to stop
import http from 'node:http'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'

export interface Seen { method: string, url: string, headers: http.IncomingHttpHeaders, body: Buffer }

export interface TestBackend {
  readonly name: string
  readonly url: string
  readonly port: number
  readonly server: http.Server
  readonly seen: Seen[]
  /** replace the answer for the next requests */
  handler: ((req: http.IncomingMessage, res: http.ServerResponse, body: Buffer) => void) | undefined
  close(): Promise<void>
}

export async function startBackend (name: string, t?: { teardown(fn: () => unknown): void }): Promise<TestBackend> {
  const seen: Seen[] = []
  const b: Partial<TestBackend> & { handler: TestBackend['handler'] } = { name, seen, handler: undefined }
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const body = Buffer.concat(chunks)
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body })
      if (b.handler) return b.handler(req, res, body)
      const out = JSON.stringify({ system: name, method: req.method, url: req.url, bytes: body.length })
      res.writeHead(200, { 'content-type': 'application/json', 'x-backend': name })
      res.end(out)
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const port = (server.address() as AddressInfo).port
  const backend = Object.assign(b, {
    url: `http://127.0.0.1:${port}`,
    port,
    server,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) })
  }) as TestBackend
  t?.teardown(() => backend.close())
  return backend
}
