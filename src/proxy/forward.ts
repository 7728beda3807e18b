// forward one request to one backend through undici's dispatch API and stream the answer back:
// the lowest-overhead path undici offers (no Readable per response, backpressure through the
// controller); see bench/README.md for why this replaces @fastify/reply-from on the hot path
import type { ServerResponse } from 'node:http'
import type { Readable } from 'node:stream'
import type { Dispatcher } from 'undici'
import { SAFE_METHODS, type BackendName } from '../config/index.js'
import type { Upstream } from './upstream-pool.js'
import { clientResponseHeaders } from './headers.js'
import { isConnectFailure, isSocketReset, mapUpstreamError, errorKind } from './error-map.js'
import { BodyFeed } from './body-feed.js'
import { DUALTRACK_ERR_CLIENT_ABORT, DUALTRACK_ERR_DEADLINE, type UpstreamErrorKind } from '../errors.js'

/** GET/HEAD/OPTIONS go again at most this often, and only when the connection never opened */
export const MAX_IDEMPOTENT_RETRIES = 2

/** a write goes again at most once, and only when not a byte of it was written (DESIGN.md §7) */
export const MAX_WRITE_RETRIES = 1

function noop (): void {}

/** what the caller learns when an exchange ends (metrics, logs, affinity, guard) */
export interface ExchangeResult {
  readonly status: number
  /** set when the backend failed (timeout, connect, reset, bad answer) */
  readonly errorKind: UpstreamErrorKind | undefined
  /** the client went away before the answer was complete */
  readonly aborted: boolean
  readonly attempts: number
  /** the answer's headers, as the backend sent them (undefined after an error) */
  readonly headers: Record<string, string | string[] | undefined> | undefined
  /** the answer's body, only when the caller asked to capture it (bounded) */
  readonly body: Buffer | undefined
  readonly error: Error | undefined
}

export interface ExchangeOptions {
  readonly upstream: Upstream
  readonly method: string
  /** path and query as sent to the backend */
  readonly path: string
  readonly headers: Record<string, string | string[]>
  /** a stream (the client's request), a buffer already read, or null */
  readonly body: Readable | Buffer | null
  readonly res: ServerResponse
  /** headers added to every answer: x-dualtrack-backend, x-dualtrack-reason, x-request-id */
  readonly addHeaders: Record<string, string>
  readonly backend: BackendName
  /** keep up to this many bytes of the answer for the caller (affinity learning); 0: none */
  readonly captureBytes: number
  /** called once, when the answer is complete, failed or the client went away */
  readonly onDone: (result: ExchangeResult) => void
  /** last look at the answer's headers before they are written (affinity learning) */
  readonly beforeHead?: ((status: number, headers: Record<string, string | string[] | undefined>, body: Buffer | undefined) => void | Promise<void>) | undefined
}

// one exchange is one object with methods (no closures per request); it is the undici handler
export class Exchange implements Dispatcher.DispatchHandler {
  readonly #opts: ExchangeOptions
  #controller: Dispatcher.DispatchController | null = null
  #timer: NodeJS.Timeout | null = null
  #attempts = 0
  #status = 0
  #headersSent = false
  #done = false
  #aborted = false
  #upstreamHeaders: Record<string, string | string[] | undefined> | undefined
  #chunks: Buffer[] | null = null
  #captured = 0
  #holding = false
  #feed: BodyFeed | null = null

  constructor (o: ExchangeOptions) {
    this.#opts = o
    this.onClientClose = this.onClientClose.bind(this)
    this.onDeadline = this.onDeadline.bind(this)
    this.onDrain = this.onDrain.bind(this)
  }

  start (): void {
    const o = this.#opts
    o.res.once('close', this.onClientClose)
    this.#timer = setTimeout(this.onDeadline, o.upstream.timeoutMs)
    // a body stream's errors (the client went away, over bodyLimit) are read through the feed
    if (o.body !== null && !Buffer.isBuffer(o.body)) o.body.on('error', noop)
    this.#dispatch()
  }

  #dispatch (): void {
    const o = this.#opts
    this.#attempts++
    let body: Buffer | BodyFeed | null = null
    if (o.body !== null) {
      if (Buffer.isBuffer(o.body)) body = o.body
      else {
        // undici gets a feed, not the client's stream: it cannot destroy it, and a retry reads on
        this.#feed?.detach()
        body = this.#feed = new BodyFeed(o.body)
      }
    }
    o.upstream.pool.dispatch({
      origin: o.upstream.origin,
      path: o.path,
      method: o.method as Dispatcher.HttpMethod,
      headers: o.headers,
      // undici writes async iterables too (client-h1 writeIterable); its types only list streams
      body: body as Buffer | Readable | null,
      // writes must wait for the pipeline head: never sent twice on a broken keep-alive socket
      idempotent: o.body === null && SAFE_METHODS.has(o.method)
    }, this)
  }

  /** the request provably never left: the connection never opened, or it closed before undici took a byte */
  #neverLeft (err: Error): boolean {
    if (isConnectFailure(err)) return true
    return this.#feed !== null && !this.#feed.taken && isSocketReset(err)
  }

  onRequestStart (controller: Dispatcher.DispatchController): void {
    this.#controller = controller
    if (this.#aborted) controller.abort(new DUALTRACK_ERR_CLIENT_ABORT())
    // the deadline answered 504 while the request waited for a connection: it must never leave now
    // (a payment sent after its client was told it failed is the worst kind of duplicate)
    else if (this.#done) controller.abort(new DUALTRACK_ERR_DEADLINE(this.#opts.upstream.timeoutMs))
  }

  onResponseStart (controller: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>): void {
    if (statusCode < 200) return // 1xx informational: wait for the final answer
    this.#status = statusCode
    this.#upstreamHeaders = headers
    if (this.#opts.captureBytes > 0 || this.#opts.beforeHead !== undefined) {
      // hold the answer until it is complete (bounded), so the caller can read it before the client does
      this.#chunks = []
      this.#holding = this.#opts.beforeHead !== undefined
      if (!this.#holding) this.#writeHead()
      return
    }
    this.#writeHead()
  }

  #writeHead (): void {
    const o = this.#opts
    const h = clientResponseHeaders(this.#upstreamHeaders ?? {})
    for (const k in o.addHeaders) h[k] = o.addHeaders[k]
    o.res.writeHead(this.#status, h)
    this.#headersSent = true
  }

  onResponseData (controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#chunks !== null) {
      if (this.#captured + chunk.length <= this.#opts.captureBytes) this.#chunks.push(chunk)
      this.#captured += chunk.length
      if (this.#holding) {
        // past the capture cap the answer is not held any longer: it streams and is not learned from
        if (this.#captured > this.#opts.captureBytes) {
          this.#holding = false
          this.#writeHead()
          for (const c of this.#chunks) this.#opts.res.write(c)
          this.#chunks = null
          this.#write(controller, chunk)
        }
        return
      }
    }
    this.#write(controller, chunk)
  }

  #write (controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (!this.#opts.res.write(chunk)) {
      controller.pause()
      this.#opts.res.once('drain', this.onDrain)
    }
  }

  onDrain (): void {
    this.#controller?.resume()
  }

  onResponseEnd (): void {
    const o = this.#opts
    const body = this.#chunks !== null && this.#captured <= o.captureBytes ? Buffer.concat(this.#chunks) : undefined
    if (this.#holding) {
      this.#holding = false
      const hook = o.beforeHead as NonNullable<ExchangeOptions['beforeHead']>
      let held: void | Promise<void>
      try {
        held = hook(this.#status, this.#upstreamHeaders ?? {}, body)
      } catch {
        held = undefined
      }
      const flush = () => {
        if (this.#aborted) return
        this.#writeHead()
        o.res.end(body)
        this.#finish(undefined, body)
      }
      if (held !== undefined && typeof (held as Promise<void>).then === 'function') (held as Promise<void>).then(flush, flush)
      else flush()
      return
    }
    o.res.end()
    this.#finish(undefined, body)
  }

  onResponseError (_controller: Dispatcher.DispatchController, err: Error): void {
    const o = this.#opts
    if (this.#aborted) return this.#finish(err, undefined)
    if (!this.#headersSent && this.#status === 0) {
      // only a connection that never opened is retried, only for GET/HEAD/OPTIONS without a body
      if (o.body === null && SAFE_METHODS.has(o.method)) {
        if (isConnectFailure(err) && this.#attempts <= MAX_IDEMPOTENT_RETRIES) return this.#dispatch()
      } else if (this.#attempts <= MAX_WRITE_RETRIES && this.#neverLeft(err)) {
        // a write that never left (envoy's reset-before-request) goes once more, to the same backend
        return this.#dispatch()
      }
    }
    if (this.#headersSent || o.res.headersSent) {
      // the status line is gone: cut the connection so the client sees a truncated answer, not a complete one
      o.res.destroy(err)
      return this.#finish(err, undefined)
    }
    const mapped = mapUpstreamError(err, o.backend)
    this.#status = mapped.status
    // a client at fault (a body over bodyLimit) may still be sending: the rest is not read
    if (mapped.fault === 'client') o.res.shouldKeepAlive = false
    o.res.writeHead(mapped.status, { ...o.addHeaders, 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(mapped.body) })
    o.res.end(mapped.body)
    this.#finish(err, undefined)
  }

  onDeadline (): void {
    this.#timer = null
    if (this.#done) return
    const err = new DUALTRACK_ERR_DEADLINE(this.#opts.upstream.timeoutMs)
    if (this.#controller !== null) this.#controller.abort(err)
    else this.onResponseError(null as never, err)
  }

  onClientClose (): void {
    if (this.#done || this.#opts.res.writableFinished) return
    // the client went away: cancel the upstream request so its socket is freed
    this.#aborted = true
    if (this.#controller !== null) this.#controller.abort(new DUALTRACK_ERR_CLIENT_ABORT())
    const body = this.#opts.body
    if (body !== null && !Buffer.isBuffer(body)) body.destroy()
    this.#finish(new DUALTRACK_ERR_CLIENT_ABORT(), undefined)
  }

  #finish (err: Error | undefined, body: Buffer | undefined): void {
    if (this.#done) return
    this.#done = true
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#feed?.detach()
    this.#opts.res.removeListener('close', this.onClientClose)
    const aborted = this.#aborted
    this.#opts.onDone({
      // 499: nginx's "client closed request", so an abort is not counted as a success
      status: aborted ? 499 : this.#status,
      errorKind: err !== undefined && !aborted ? errorKind(err) : undefined,
      aborted,
      attempts: this.#attempts,
      headers: this.#upstreamHeaders,
      body,
      error: err
    })
  }
}

export function forward (o: ExchangeOptions): void {
  new Exchange(o).start()
}
