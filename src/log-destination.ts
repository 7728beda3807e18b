// the log destination of `dualtrack start` and the demo: lines buffered (one write(2) per ~4 KiB, a
// write per access line cost ~5% of a request: bench/README.md) and given up, never retried, when
// the descriptor is gone. sonic-boom's flushSync retries every error but EAGAIN forever (write(1) =
// EIO every 100 ms on a hung-up terminal, for as long as one watches): this one drops the lines
import { write, writeSync } from 'node:fs'

/** bytes buffered before one write(2) */
export const LOG_BUFFER_BYTES = 4096
/** a quiet gateway's lines still show within this long */
export const LOG_FLUSH_MS = 1000
/** EAGAIN (a full non-blocking pipe) is retried this often, 10 ms apart, then the lines are dropped */
const EAGAIN_TRIES = 100
const EAGAIN_WAIT_MS = 10

export class LogDestination {
  readonly #fd: number
  readonly #minLength: number
  #buf = ''
  #pending: Buffer | null = null
  #writing = false
  #tries = 0
  #dead: NodeJS.ErrnoException | null = null
  #waiters: (() => void)[] = []
  readonly #timer: NodeJS.Timeout

  constructor (fd = 1, minLength = LOG_BUFFER_BYTES, flushMs = LOG_FLUSH_MS) {
    this.#fd = fd
    this.#minLength = minLength
    this.#timer = setInterval(() => this.flush(), flushMs).unref()
    this.writeNext = this.writeNext.bind(this)
    this.flushSync = this.flushSync.bind(this)
    // lines still buffered when the process exits (process.exit included) are written once
    process.once('exit', this.flushSync)
  }

  /** the error that made it give up, if it did */
  get dead (): NodeJS.ErrnoException | null { return this.#dead }

  write (line: string): boolean {
    if (this.#dead !== null) return true
    this.#buf += line
    if (!this.#writing && this.#buf.length >= this.#minLength) this.writeNext()
    return true
  }

  /** write what is buffered; cb once it is written (or dropped) */
  flush (cb?: (err?: Error) => void): void {
    if (cb !== undefined) {
      if (!this.#writing && this.#buf === '' && this.#pending === null) return cb()
      this.#waiters.push(cb)
    }
    if (!this.#writing) this.writeNext()
  }

  writeNext (): void {
    if (this.#dead !== null) return this.#settle()
    if (this.#pending === null) {
      if (this.#buf === '') return this.#settle()
      this.#pending = Buffer.from(this.#buf)
      this.#buf = ''
    }
    this.#writing = true
    const data = this.#pending
    write(this.#fd, data, 0, data.length, null, (err, n) => {
      this.#writing = false
      if (err) {
        if (err.code === 'EAGAIN' && ++this.#tries < EAGAIN_TRIES) {
          this.#writing = true
          setTimeout(() => { this.#writing = false; this.writeNext() }, EAGAIN_WAIT_MS).unref()
          return
        }
        if (err.code !== 'EAGAIN') return this.#giveUp(err)
        this.#pending = null // a reader that takes nothing for a second loses these lines, not the process
      } else {
        this.#pending = n < data.length ? data.subarray(n) : null
      }
      this.#tries = 0
      if (this.#pending !== null || this.#buf.length >= this.#minLength || this.#waiters.length > 0) this.writeNext()
    })
  }

  /** everything buffered, now (at exit, and after a fatal line); gives up on the first hard error */
  flushSync (): void {
    if (this.#dead !== null) return
    // a write in flight keeps its own chunk; the rest goes now
    let data = this.#pending === null || this.#writing ? Buffer.from(this.#buf) : Buffer.concat([this.#pending, Buffer.from(this.#buf)])
    if (!this.#writing) this.#pending = null
    this.#buf = ''
    let tries = 0
    while (data.length > 0) {
      try {
        data = data.subarray(writeSync(this.#fd, data))
      } catch (err) {
        const e = err as NodeJS.ErrnoException
        if (e.code !== 'EAGAIN') return this.#giveUp(e)
        if (++tries >= EAGAIN_TRIES) return
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, EAGAIN_WAIT_MS)
      }
    }
  }

  /** stop writing for good: the descriptor is gone (EIO: a hung-up terminal; EPIPE: no reader) */
  #giveUp (err: NodeJS.ErrnoException): void {
    this.#dead = err
    this.#buf = ''
    this.#pending = null
    clearInterval(this.#timer)
    this.#settle()
  }

  #settle (): void {
    const w = this.#waiters
    this.#waiters = []
    for (const cb of w) cb()
  }

  end (): void {
    this.flushSync()
    clearInterval(this.#timer)
    process.removeListener('exit', this.flushSync)
  }
}
