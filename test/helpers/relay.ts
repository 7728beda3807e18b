// a TCP relay on port 0 whose target is set later: lets two replicas name each other as peers
// (state.peers) before either has a port, as a Service address would; cut off, it is a partition
import net from 'node:net'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'

export interface Relay {
  readonly url: string
  /** where connections go from now on (undefined: accepted and never answered, a dead peer) */
  target: number | undefined
  /** drop every connection it carries now (with target undefined: a network partition) */
  cut (): void
  close (): Promise<void>
}

export async function startRelay (t: { teardown(fn: () => unknown): void }): Promise<Relay> {
  const sockets = new Set<net.Socket>()
  const relay: Partial<Relay> & { target: number | undefined } = { target: undefined }
  const server = net.createServer((client) => {
    sockets.add(client)
    client.on('close', () => sockets.delete(client))
    client.on('error', () => client.destroy())
    if (relay.target === undefined) return
    const up = net.connect(relay.target, '127.0.0.1')
    sockets.add(up)
    up.on('close', () => { sockets.delete(up); client.destroy() })
    up.on('error', () => up.destroy())
    client.on('close', () => up.destroy())
    client.pipe(up).pipe(client)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const port = (server.address() as AddressInfo).port
  const r = Object.assign(relay, {
    url: `http://127.0.0.1:${port}`,
    cut: () => { for (const s of sockets) s.destroy() },
    close: () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy()
      server.close(() => resolve())
    })
  }) as Relay
  t.teardown(() => r.close())
  return r
}
