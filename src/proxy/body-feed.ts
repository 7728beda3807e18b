// the client's request body as undici sees it: an async iterable that pulls from the client's stream
// only when undici asks, never destroys that stream, and knows whether undici took any byte of it.
// undici writes a streamed request's head together with its first body chunk, so a request whose
// feed gave nothing provably never left: it may go again on another connection (DESIGN.md §7)
import type { Readable } from 'node:stream'

const DONE: IteratorReturnResult<undefined> = Object.freeze({ done: true, value: undefined })

export class BodyFeed implements AsyncIterableIterator<Buffer> {
  readonly #src: Readable
  /** undici was handed at least one chunk (the request may have left) */
  taken = false
  #closed = false
  #wake: (() => void) | null = null

  constructor (src: Readable) {
    this.#src = src
    this.wake = this.wake.bind(this)
  }

  [Symbol.asyncIterator] (): this { return this }

  async next (): Promise<IteratorResult<Buffer, undefined>> {
    const src = this.#src
    for (;;) {
      if (this.#closed) return DONE
      if (src.errored) throw src.errored
      const chunk = src.read() as Buffer | null
      if (chunk !== null) {
        this.taken = true
        return { done: false, value: chunk }
      }
      if (src.readableEnded) return DONE
      if (src.destroyed) throw new Error('client request body closed early')
      await new Promise<void>((resolve) => {
        this.#wake = resolve
        src.once('readable', this.wake).once('end', this.wake).once('error', this.wake).once('close', this.wake)
      })
    }
  }

  wake (): void {
    const src = this.#src
    src.off('readable', this.wake).off('end', this.wake).off('error', this.wake).off('close', this.wake)
    const w = this.#wake
    this.#wake = null
    w?.()
  }

  /** undici stops early (an error or an abort): the client's stream stays as it is */
  async return (): Promise<IteratorResult<Buffer, undefined>> {
    this.detach()
    return DONE
  }

  /** this attempt is over: read nothing more, so another attempt starts where this one stopped */
  detach (): void {
    this.#closed = true
    this.wake()
  }
}
