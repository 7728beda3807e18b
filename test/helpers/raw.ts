// raw TCP clients for hostile-input tests: bytes exactly as written (no HTTP client would send them)
import net from 'node:net'

export interface RawAnswer {
  /** everything the server sent, latin1 */
  readonly text: string
  /** the status code of the first answer, 0 if none */
  readonly status: number
  /** the server closed the connection */
  readonly closed: boolean
}

/** connect, write the bytes, and collect the answer until the server closes or `idleMs` pass with nothing more */
export function rawRequest (port: number, bytes: string | Buffer, opts: { idleMs?: number } = {}): Promise<RawAnswer> {
  const idleMs = opts.idleMs ?? 3000
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1')
    let text = ''
    let timer: NodeJS.Timeout | undefined
    const done = (closed: boolean) => {
      if (timer) clearTimeout(timer)
      socket.destroy()
      const m = /^HTTP\/1\.1 (\d{3})/.exec(text)
      resolve({ text, status: m ? Number(m[1]) : 0, closed })
    }
    const arm = () => {
      if (timer) clearTimeout(timer)
      timer = setTimeout(() => done(false), idleMs)
    }
    socket.on('connect', () => { socket.write(bytes); arm() })
    socket.on('data', (c: Buffer) => { text += c.toString('latin1'); arm() })
    socket.on('end', () => done(true))
    socket.on('close', () => done(true))
    socket.on('error', (err: NodeJS.ErrnoException) => {
      // a reset after the answer is a close too
      if (err.code === 'ECONNRESET' || err.code === 'EPIPE') done(true)
      else reject(err)
    })
  })
}

export function portOf (url: string): number {
  return Number(new URL(url).port)
}
