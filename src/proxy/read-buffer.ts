import type { Socket } from 'node:net';

/** Size of the shared read buffer: what Node reads per call into a buffer of its own. */
export const READ_BUFFER_SIZE = 64 * 1024;

/** Spare buffers kept for reuse, at most (each READ_BUFFER_SIZE). */
const SPARES_MAX = 8;

/** A buffer whose bytes a write still holds (see SharedReadBuffer). */
interface Lend {
  /** The socket whose queued write points into the buffer. */
  readonly dest: Socket;
  /** Where the queued bytes start and end in the buffer; `saved` holds a copy of them. */
  readonly at: number;
  readonly end: number;
  readonly saved: Buffer;
}

/**
 * One read buffer for every socket the proxy dials (`net.connect`'s `onread` option), instead
 * of the fresh 64 KiB buffer Node allocates for each read, which with the garbage it leaves is
 * a share of the cost of each byte on the server→client path.
 *
 * A socket reads into the buffer it was last given (`next`, called by Node after every read
 * callback), so an idle socket keeps pointing at it. That is safe as long as no write still
 * holds bytes of it when another read lands there. The read callback handles each chunk to the
 * end (writes it to the client) before returning, and a write that the kernel took whole
 * leaves nothing behind. One that did not (the client's socket buffer is full, or a write was
 * already queued) still points into this buffer: then the buffer is lent to that write. The
 * queued bytes are copied aside, every later read gets a new buffer, and a socket that still
 * reads into the lent one (it was given it before the lend) has its bytes copied out and the
 * queued ones put back before its callback returns. No write runs between a read and its
 * callback (both happen in one libuv read step), so the queued bytes are whole whenever libuv
 * sends them. A lend ends once its socket has nothing queued or is destroyed (its writes are
 * then dropped with the handle). Buffers and copies whose lend ended are reused. A connection
 * whose writes keep queuing reads into buffers of its own meanwhile (see Connection), so lends,
 * and their copies, stay rare.
 *
 * One instance per thread (the data path of a worker thread has its own).
 */
export class SharedReadBuffer {
  #current: Buffer = Buffer.allocUnsafe(READ_BUFFER_SIZE);
  readonly #lent = new Map<Buffer, Lend>();
  /** Buffers no write holds any more (some sockets may still read into them: that is fine). */
  readonly #spareBuffers: Buffer[] = [];
  /** Storage for the saved bytes of the next lends. */
  readonly #spareSaved: Buffer[] = [];
  /** Reads that landed in a lent buffer and were copied out (for tests and profiles). */
  copies = 0;
  /** Times the current buffer was lent to a write and replaced. */
  lends = 0;

  /** For `onread.buffer`: the buffer the next read of a socket goes into. */
  readonly next = (): Buffer => this.#current;

  /**
   * The `n` bytes a socket just read into `buf`, at the start of its read callback: a view of
   * `buf`, or a copy when `buf` is lent to a write that is still queued (whose bytes are then
   * put back in place).
   */
  take(n: number, buf: Buffer): Buffer {
    if (this.#lent.size !== 0) {
      const lend = this.#lent.get(buf);
      if (lend !== undefined) {
        if (!done(lend)) {
          const copy = Buffer.allocUnsafe(n);
          buf.copy(copy, 0, 0, n);
          lend.saved.copy(buf, lend.at, 0, lend.end - lend.at);
          this.copies++;
          return copy;
        }
        this.#end(buf, lend);
      }
    }
    return buf.subarray(0, n);
  }

  /**
   * After the read callback wrote `chunk` (from `take`) to `dest`, which had `queuedBefore`
   * bytes queued before: lends the buffer if `dest` still holds some of it. Returns whether it
   * did.
   */
  settle(chunk: Buffer, buf: Buffer, dest: Socket, queuedBefore: number): boolean {
    const queued = dest.writableLength;
    if ((queued === 0 && queuedBefore === 0) || dest.destroyed || chunk.buffer !== buf.buffer)
      return false;
    const end = chunk.length;
    // With nothing queued before, what is queued now is the tail of what was written (bytes of
    // the tap's own frames included, so this may save a little more than needed); else the
    // whole chunk waits behind the earlier write.
    const at = queuedBefore === 0 ? Math.max(0, end - queued) : 0;
    for (const [b, l] of this.#lent) if (done(l)) this.#end(b, l);
    const saved = this.#spareSaved.pop() ?? Buffer.allocUnsafe(READ_BUFFER_SIZE);
    buf.copy(saved, 0, at, end);
    // A spare is never lent: take this one off the list if it is there.
    const i = this.#spareBuffers.indexOf(buf);
    if (i >= 0) this.#spareBuffers.splice(i, 1);
    this.#lent.set(buf, { dest, at, end, saved });
    this.lends++;
    if (buf === this.#current)
      this.#current = this.#spareBuffers.pop() ?? Buffer.allocUnsafe(READ_BUFFER_SIZE);
    return true;
  }

  /** A lend is over: its buffer and its saved copy's storage can serve again. */
  #end(buf: Buffer, lend: Lend): void {
    this.#lent.delete(buf);
    if (this.#spareBuffers.length < SPARES_MAX && buf !== this.#current)
      this.#spareBuffers.push(buf);
    if (this.#spareSaved.length < SPARES_MAX) this.#spareSaved.push(lend.saved);
  }

  /** Buffers lent to writes still queued, at the last check (for tests). */
  get lent(): number {
    return this.#lent.size;
  }
}

function done(l: Lend): boolean {
  return l.dest.destroyed || l.dest.writableLength === 0;
}

/** The read buffer of this thread's dialed sockets. */
export const upstreamReads = new SharedReadBuffer();
