/**
 * The streams of one HTTP/2 connection as far as a drain cares: open or not, and how each ended.
 */

/** Bit set in a stream's entry once the client has sent END_STREAM on it (RFC 9113 §5.1). */
export const CLIENT_HALF_CLOSED = 0x1;
/** Bit set in a stream's entry once the server has sent END_STREAM on it (RFC 9113 §5.1). */
export const SERVER_HALF_CLOSED = 0x2;
const BOTH_HALVES_CLOSED = CLIENT_HALF_CLOSED | SERVER_HALF_CLOSED;

/**
 * Open streams keyed by id, each with its half-closed bits, plus counts of how streams ended.
 *
 * Guarantees: a stream is in the table from `open()` until both halves have closed or it was
 * reset; each stream that leaves is counted exactly once, in `endedNormally` or `endedByReset`.
 * Operations on ids not in the table do nothing (frames on closed or never-seen streams are
 * common races, RFC 9113 §5.1, and are not ours to judge). Only the owning session mutates it.
 */
export class StreamTable {
  readonly #streams = new Map<number, number>();
  /** Streams that left because both sides sent END_STREAM. */
  endedNormally = 0;
  /** Streams that left because either side sent RST_STREAM. */
  endedByReset = 0;

  /** Number of open streams. */
  get size(): number {
    return this.#streams.size;
  }

  has(streamId: number): boolean {
    return this.#streams.has(streamId);
  }

  /** Starts tracking `streamId` with the given half-closed bits (0, or CLIENT_HALF_CLOSED for push). */
  open(streamId: number, halves: number): void {
    this.#streams.set(streamId, halves);
  }

  /** Records END_STREAM from one side (`half` is one of the *_HALF_CLOSED bits). */
  closeHalf(streamId: number, half: number): void {
    const halves = this.#streams.get(streamId);
    if (halves === undefined) return;
    const next = halves | half;
    if (next === BOTH_HALVES_CLOSED) {
      this.#streams.delete(streamId);
      this.endedNormally++;
    } else {
      this.#streams.set(streamId, next);
    }
  }

  /** Records RST_STREAM from either side: the stream is closed at once (RFC 9113 §6.4). */
  reset(streamId: number): void {
    if (this.#streams.delete(streamId)) this.endedByReset++;
  }
}
